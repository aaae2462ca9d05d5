// Key lists in the environment, `<keyId>:<base64 32 bytes>,<older keyId>:<key>`: the first key
// encrypts, every listed key decrypts, so keys rotate by prepending a new one. One parser for
// both lists (MAILROOM_CODEC_KEYS for Temporal payloads, MAILROOM_SECRET_KEYS for stored IMAP
// credentials), so both refuse the same mistakes with the same words.

export interface KeyList {
  /** Id of the key new ciphertexts are made with (the first listed). */
  currentKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
}

export interface KeyListRules {
  /** The variable's name, for messages. */
  variable: string;
  keyId: RegExp;
  /** What keyId accepts, in words. */
  keyIdRule: string;
  /** How to make a key, appended to messages about a missing or malformed one. */
  hint: string;
  error: new (message: string) => Error;
}

export function parseKeyList(value: string, rules: KeyListRules): KeyList {
  const { variable, hint, error: Failure } = rules;
  const keys = new Map<string, Buffer>();
  let currentKeyId = '';
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(':');
    if (colon < 0)
      // The entry is not echoed: without its id, it may be a bare key.
      throw new Failure(`${variable}: an entry must look like <keyId>:<base64 key>; ${hint}`);
    const id = entry.slice(0, colon).trim();
    const material = entry.slice(colon + 1).trim();
    if (!rules.keyId.test(id)) throw new Failure(`${variable}: key id "${id.slice(0, 64)}" must be ${rules.keyIdRule}`);
    if (keys.has(id)) throw new Failure(`${variable}: key id "${id}" is listed twice`);
    const key = Buffer.from(material, 'base64');
    if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== material.replace(/=+$/, '')) {
      throw new Failure(
        `${variable}: key "${id}" must be exactly 32 bytes in base64 (got ${key.length} bytes); ${hint}`,
      );
    }
    keys.set(id, key);
    if (!currentKeyId) currentKeyId = id;
  }
  if (!currentKeyId) throw new Failure(`${variable} lists no keys; ${hint}`);
  return { currentKeyId, keys };
}
