// The process environment is read here and nowhere else outside lib/config/ (a lint rule says
// so): the validated configurations (./index.ts, ./sync.ts, ./sqs-bridge.ts) and the modules
// that parse variables of their own (log settings, codec keys, worker versioning, the secret
// keyring) take an `env` parameter for tests and default to this.
export function environment(): NodeJS.ProcessEnv {
  return process.env;
}
