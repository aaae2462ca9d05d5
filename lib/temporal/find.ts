// The visibility query behind `npm run find` (starters/find.ts): inbound runs whose sender or
// recipient hashes (MailFromHash, MailToHash; lib/mail/address-hash.ts) match an address under
// any listed key, so runs hashed under a retired key are found too. The same string works in
// the Web UI's filter box, which is why the command prints it.
import { EMAIL_STATUSES, type EmailStatus } from '../../contracts/email-status';
import { MAIL_FROM_HASH, MAIL_STATUS, MAIL_TO_HASH } from '../../contracts/search-attributes';
import { environment } from '../config/env';
import type { KeyList } from '../config/key-list';
import { hashesForSearch } from '../mail/address-hash';

export const INBOUND_WORKFLOW_TYPE = 'processInboundEmail';
/** Where the Web UI links point unless TEMPORAL_UI_URL says otherwise (the local stack's UI). */
export const DEFAULT_UI_URL = 'http://127.0.0.1:8233';
export const UI_URL_VAR = 'TEMPORAL_UI_URL';

export interface FindCriteria {
  /** Addresses in normal form (lib/mail/address.ts); any of them matches. */
  from?: readonly string[];
  to?: readonly string[];
  /** Runs started after this time (unix seconds). */
  since?: number;
  status?: readonly EmailStatus[];
}

const list = (values: readonly string[]) => `(${values.map((v) => `'${v}'`).join(', ')})`;

/** The hashes of `addresses` under every key, each once (current key first). */
export function searchHashes(keys: KeyList, addresses: readonly string[]): string[] {
  return [...new Set(addresses.flatMap((a) => hashesForSearch(keys, a).map((h) => h.hash)))];
}

/** The list filter, for the client's workflow.list and the Web UI alike. */
export function findQuery(keys: KeyList, c: FindCriteria): string {
  const parts = [`WorkflowType = '${INBOUND_WORKFLOW_TYPE}'`];
  if (c.from?.length) parts.push(`${MAIL_FROM_HASH.name} IN ${list(searchHashes(keys, c.from))}`);
  if (c.to?.length) parts.push(`${MAIL_TO_HASH.name} IN ${list(searchHashes(keys, c.to))}`);
  if (c.status?.length) {
    for (const s of c.status) if (!EMAIL_STATUSES.includes(s)) throw new Error(`unknown status ${s}`);
    parts.push(`${MAIL_STATUS.name} IN ${list(c.status)}`);
  }
  if (c.since !== undefined) parts.push(`StartTime > '${new Date(c.since * 1000).toISOString()}'`);
  return parts.join(' AND ');
}

/** The Web UI's base address: TEMPORAL_UI_URL, else the local stack's. */
export function webUiUrl(env: NodeJS.ProcessEnv = environment()): string {
  return (env[UI_URL_VAR]?.trim() || DEFAULT_UI_URL).replace(/\/+$/, '');
}

/** A run's page in the Web UI. */
export function runLink(ui: string, namespace: string, workflowId: string, runId: string): string {
  return `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

/** The Web UI's workflow list with the query filled in. */
export function listLink(ui: string, namespace: string, query: string): string {
  return `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`;
}
