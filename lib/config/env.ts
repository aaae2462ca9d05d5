import type { z } from 'zod';

// The process environment is read here and nowhere else outside lib/config/ (a lint rule says
// so): the validated configurations (./index.ts, ./sync.ts, ./sqs-bridge.ts) and the modules
// that parse variables of their own (log settings, codec keys, worker versioning, the secret
// keyring) take an `env` parameter for tests and default to this.
export function environment(): NodeJS.ProcessEnv {
  return process.env;
}

/**
 * Validates `env` against a configuration's schema. Empty strings count as unset, as they do for
 * the Python worker's `os.getenv(...) or default`. A bad value throws `error` with every
 * offending variable named and its value shown.
 */
export function parseEnvironment<S extends z.ZodTypeAny>(
  schema: S,
  env: NodeJS.ProcessEnv,
  what: string,
  error: new (message: string) => Error,
): z.infer<S> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(cleaned[String(i.path[0])] ?? null)})`,
  );
  throw new error(`Invalid ${what}, fix these environment variables:\n  ${problems.join('\n  ')}`);
}
