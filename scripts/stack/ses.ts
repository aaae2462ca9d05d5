// A local SES v2 endpoint (aws-ses-v2-local from npm) for outbound mail in the tests and the
// local stack: auto-replies and forwards outside our domains go through the real SESv2
// client to it, and what it received is read back from its store (GET /store), as a
// person would in its web view.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import startSesV2Local from 'aws-ses-v2-local';

/** One message as aws-ses-v2-local stored it: `from` and `to` are the message's own header texts. */
export interface SesStoredEmail {
  messageId: string;
  from: string;
  replyTo: string[];
  destination: { to: string[]; cc: string[]; bcc: string[] };
  subject: string;
  body: { text?: string; html?: string };
  at: number;
}

export interface LocalSes {
  endpoint: string;
  port: number;
  /** Everything it received so far, oldest first. */
  emails(): Promise<SesStoredEmail[]>;
  clear(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSesServer(options: { port?: number } = {}): Promise<LocalSes> {
  const server: Server = await startSesV2Local({ host: '127.0.0.1', port: options.port ?? 0 });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    async emails() {
      const res = await fetch(`${endpoint}/store`);
      if (!res.ok) throw new Error(`aws-ses-v2-local /store answered ${res.status}`);
      return ((await res.json()) as { emails: SesStoredEmail[] }).emails;
    },
    async clear() {
      await fetch(`${endpoint}/clear-store`, { method: 'POST' });
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
