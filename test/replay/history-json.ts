// History <-> proto JSON (the format of `temporal workflow show --output json` and of the
// SDK's historyToJSON/historyFromJSON), for the recorded replay histories.
//
// Why not @temporalio/common's historyFromJSON: in this install protobufjs 8 exists in three
// copies (under @temporalio/common, /proto and /worker; @grpc/proto-loader keeps protobufjs 7
// at the top), and common's protojson rejects the History type of @temporalio/proto with
// "type must be a Type" (an instanceof across copies). Worker.runReplayHistories calls it for
// histories whose event ids are strings, so these files are parsed here, with the protobufjs
// copy @temporalio/proto itself uses, into a History with Long ids that it takes as is.
import { dirname } from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

type History = proto.temporal.api.history.v1.IHistory;
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

const protojson = require(
  require.resolve('protobufjs/ext/protojson', { paths: [dirname(require.resolve('@temporalio/proto'))] }),
) as ProtoJson;
const historyType = (
  patchProtobufRoot(proto as unknown as Record<string, unknown>) as unknown as { lookupType(name: string): unknown }
).lookupType('temporal.api.history.v1.History');

export function historyToJSON(history: History): string {
  return JSON.stringify(
    protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)),
    null,
    1,
  );
}

export function historyFromJSON(json: string): History {
  const parsed = JSON.parse(json) as unknown;
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { events?: unknown }).events))
    throw new TypeError('not a history: expected an object with an array of events');
  // Tolerates fields a newer server or SDK wrote, as the SDK's own parser does.
  const history = protojson.fromJson(historyType, parsed, { ignoreUnknownFields: true }) as History | null;
  if (!history?.events?.length) throw new TypeError('not a history: no events');
  return history;
}
