// The demo drops and recreates its database at start (mailroom_demo). Tests that run the demo
// give it one of their own, so two of them at once (or a developer's demo beside the tests)
// never drop each other's accounts mid-run.
import { DEFAULT_DATABASE_URL } from '../../lib/config/sync';
import { dropDatabase, withDatabase } from '../../lib/storage/db';

export function demoDatabase(label: string): { url: string; drop: () => Promise<void> } {
  const url = withDatabase(process.env.DATABASE_URL || DEFAULT_DATABASE_URL, `mailroom_demo_${label}_${process.pid}`);
  return { url, drop: () => dropDatabase(url).catch(() => undefined) };
}
