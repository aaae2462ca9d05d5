// The SMTP relay for outbound mail (OUTBOUND_TRANSPORT=smtp) gets its own credentials, never
// the internal server's, and STARTTLS is required unless turned off. A real SMTP server
// (smtp-server) on loopback records what the relay was told.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { createTransports } from '../../lib/smtp/transports';
import { loadConfig } from '../../lib/config';

async function relayServer(): Promise<{ port: number; users: string[]; received: number; close(): Promise<void> }> {
  const state = { users: [] as string[], received: 0 };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    // The relay pool keeps its connection open; do not wait the default 30 s for it.
    closeTimeout: 200,
    onAuth(auth, _session, callback) {
      state.users.push(auth.username ?? '');
      callback(null, { user: auth.username });
    },
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        state.received++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    get users() {
      return state.users;
    },
    get received() {
      return state.received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const raw = Buffer.from('From: bob@example.com\r\nTo: out@elsewhere.example\r\nSubject: x\r\n\r\nhello\r\n');

test('the relay authenticates with OUTBOUND_SMTP_USER, never SMTP_USER', async (t) => {
  const relay = await relayServer();
  t.after(() => relay.close());
  const config = loadConfig({
    DOMAINS: 'example.com',
    SMTP_USER: 'internal-user',
    SMTP_PASS: 'internal-secret',
    OUTBOUND_TRANSPORT: 'smtp',
    OUTBOUND_SMTP_HOST: '127.0.0.1',
    OUTBOUND_SMTP_PORT: String(relay.port),
    OUTBOUND_SMTP_USER: 'relay-user',
    OUTBOUND_SMTP_PASS: 'relay-secret',
    OUTBOUND_SMTP_REQUIRE_TLS: 'false',
  });
  const transports = createTransports(config);
  t.after(() => transports.close());
  await transports.outbound.send('bob@example.com', ['out@elsewhere.example'], raw);
  assert.deepEqual(relay.users, ['relay-user']);
  assert.equal(relay.received, 1);
});

test('without credentials of its own the relay gets none; STARTTLS is required by default', async (t) => {
  const relay = await relayServer();
  t.after(() => relay.close());
  const base = {
    DOMAINS: 'example.com',
    SMTP_USER: 'internal-user',
    SMTP_PASS: 'internal-secret',
    OUTBOUND_TRANSPORT: 'smtp',
    OUTBOUND_SMTP_HOST: '127.0.0.1',
    OUTBOUND_SMTP_PORT: String(relay.port),
  };
  const plain = createTransports(loadConfig({ ...base, OUTBOUND_SMTP_REQUIRE_TLS: 'false' }));
  t.after(() => plain.close());
  await plain.outbound.send('bob@example.com', ['out@elsewhere.example'], raw);
  assert.deepEqual(relay.users, [], 'the internal server credentials were not offered');
  const strict = createTransports(loadConfig(base));
  t.after(() => strict.close());
  await assert.rejects(strict.outbound.send('bob@example.com', ['out@elsewhere.example'], raw), /STARTTLS/i);
  assert.equal(relay.received, 1, 'nothing sent in the clear');
});
