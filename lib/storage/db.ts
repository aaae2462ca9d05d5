// PostgreSQL access for account sync (the `pg` driver). One Pool per process; every
// multi-statement change goes through withTransaction so a crash leaves nothing half-done.
import { Client, Pool, type PoolClient } from 'pg';
import { databaseUrlFromEnv, DEFAULT_DATABASE_URL } from '../config/sync';

export { DEFAULT_DATABASE_URL };

export interface PoolOptions {
  max?: number;
  /** Let the process exit while idle connections are still open (workers, scripts). */
  allowExitOnIdle?: boolean;
}

export function createPool(databaseUrl = databaseUrlFromEnv(), options: PoolOptions = {}): Pool {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    allowExitOnIdle: options.allowExitOnIdle ?? false,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'mailroom-sync',
  });
  // An idle client losing its connection (database restart) must not crash the worker;
  // the pool replaces it and the next query reports the problem to its caller.
  pool.on('error', () => {});
  // The same for a checked-out client whose connection drops between two queries (found by
  // the chaos harness: an unhandled 'error' event killed the sync worker). Its next query
  // fails, and the caller's retry gets a fresh connection.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Runs fn in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that cannot even roll back is gone: destroy it rather than pool it.
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}

/** The database name in a postgres:// URL. */
export function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL ${redactUrl(databaseUrl)} names no database`);
  return name;
}

/** The same server with another database (the maintenance database `postgres` by default). */
export function withDatabase(databaseUrl: string, name = 'postgres'): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

export function redactUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Creates the database named in databaseUrl unless it exists. Returns whether it created it. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const name = databaseName(databaseUrl);
  const admin = new Client({ connectionString: withDatabase(databaseUrl) });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (err) {
      // Another process created it between the check and the CREATE.
      if ((err as { code?: string }).code === '42P04') return false;
      throw err;
    }
    return true;
  } finally {
    await admin.end();
  }
}

/** Drops the database (closing other sessions first); for test databases. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = databaseName(databaseUrl);
  const admin = new Client({ connectionString: withDatabase(databaseUrl) });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
