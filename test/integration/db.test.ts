// PostgreSQL connections that drop while checked out (database restart, network cut) must
// fail the transaction that holds them, not crash the worker with an unhandled 'error' event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, withTransaction } from '../../lib/storage/db';
import { ADMIN_DATABASE_URL } from './sync-fixtures';

test('a connection terminated mid-transaction fails that transaction; the pool goes on', async () => {
  const pool = createPool(ADMIN_DATABASE_URL, { max: 2 });
  const admin = createPool(ADMIN_DATABASE_URL, { max: 1 });
  const uncaught: Error[] = [];
  const onUncaught = (err: Error) => uncaught.push(err);
  // node:test would report the crash as a failure anyway; collecting it gives a clear message.
  process.on('uncaughtException', onUncaught);
  try {
    const attempt = withTransaction(pool, async (client) => {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // The connection dies while this transaction waits on something else (IMAP, say).
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await sleep(300);
      await client.query('SELECT 1');
    });
    await assert.rejects(attempt, /terminat|Connection|ECONNRESET/i);
    assert.deepEqual(uncaught, [], 'no unhandled error event');
    const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(rows[0].one, 1, 'the pool hands out a working connection afterwards');
  } finally {
    process.off('uncaughtException', onUncaught);
    await pool.end();
    await admin.end();
  }
});
