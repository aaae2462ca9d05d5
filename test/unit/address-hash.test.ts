// Address hashes (lib/mail/address-hash.ts) and the find query (lib/temporal/find.ts): the same
// address in any spelling the inbound parser accepts gives one hash; a run records the current
// key's hash and a search asks for every key's, so a retired key's runs are still found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ADDRESS_HASH_PATTERN,
  addressHash,
  hashesForRun,
  hashesForSearch,
  searchableAddress,
} from '../../lib/mail/address-hash';
import { addressList } from '../../lib/mail/address';
import { parseCodecKeys } from '../../lib/temporal/codec';
import { findQuery, listLink, runLink, searchHashes, webUiUrl } from '../../lib/temporal/find';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';

const ONE = Buffer.alloc(32, 1).toString('base64');
const TWO = Buffer.alloc(32, 2).toString('base64');
const keys = parseCodecKeys(`new:${TWO},old:${ONE}`);

test('a known answer: HMAC-SHA-256 under an HKDF-derived key, 16 hex digits (changing it orphans every recorded hash)', () => {
  assert.equal(addressHash(Buffer.alloc(32, 1), 'sender@example.net'), '45c42381ed10708f');
  assert.match(addressHash(Buffer.alloc(32, 2), 'sender@example.net'), ADDRESS_HASH_PATTERN);
  assert.notEqual(addressHash(Buffer.alloc(32, 2), 'sender@example.net'), '45c42381ed10708f', 'keyed');
});

test("an operator's spelling is searched as the inbound parser normalises the header", () => {
  const header = addressList('"Jane Q." <Jane.Q@Sender.Example.>')[0];
  assert.equal(header, 'jane.q@sender.example');
  for (const typed of ['jane.q@sender.example', ' Jane.Q@SENDER.example ', 'Jane <jane.q@sender.example>'])
    assert.equal(searchableAddress(typed), header, typed);
  for (const bad of ['jane', 'x@localhost', 'a@b.example, c@d.example'])
    assert.equal(searchableAddress(bad), undefined, bad);
});

test('a run records the current key only, each address once; a search hashes with every key', () => {
  const a = 'jane.q@sender.example';
  const run = hashesForRun(keys, [a, a, undefined]);
  assert.deepEqual(run, [addressHash(Buffer.alloc(32, 2), a)]);
  const search = hashesForSearch(keys, a);
  assert.deepEqual(
    search.map((s) => s.keyId),
    ['new', 'old'],
  );
  assert.equal(search[0].hash, run[0]);
  assert.equal(search[1].hash, addressHash(Buffer.alloc(32, 1), a), 'a run hashed before the rotation is found');
  for (const s of search) assert.match(s.hash, ADDRESS_HASH_PATTERN);
  assert.ok(!search.some((s) => s.hash.includes('jane')));
});

test('the query: every key hash per address in IN lists, status and start time, pasteable into the Web UI', () => {
  const q = findQuery(keys, {
    from: ['jane.q@sender.example', 'joe@sender.example'],
    to: ['info@example.com'],
    since: Date.UTC(2026, 11, 1) / 1000,
    status: ['delivered', 'deferred'],
  });
  const [f1, f2] = searchHashes(keys, ['jane.q@sender.example']);
  const [j1, j2] = searchHashes(keys, ['joe@sender.example']);
  const [t1, t2] = searchHashes(keys, ['info@example.com']);
  assert.equal(
    q,
    `WorkflowType = 'processInboundEmail' AND MailFromHash IN ('${f1}', '${f2}', '${j1}', '${j2}') AND ` +
      `MailToHash IN ('${t1}', '${t2}') AND MailStatus IN ('delivered', 'deferred') AND StartTime > '2026-12-01T00:00:00.000Z'`,
  );
  assert.ok(!q.includes('@'), 'no address in the query');
  assert.equal(
    findQuery(keys, { to: ['info@example.com'] }),
    `WorkflowType = 'processInboundEmail' AND MailToHash IN ('${t1}', '${t2}')`,
  );
  assert.throws(() => findQuery(keys, { status: ['sent' as never] }), /unknown status sent/);
});

test('Web UI links: TEMPORAL_UI_URL or the local stack, ids encoded', () => {
  assert.equal(webUiUrl({}), 'http://127.0.0.1:8233');
  assert.equal(webUiUrl({ TEMPORAL_UI_URL: 'https://ui.example.com/' }), 'https://ui.example.com');
  assert.equal(
    runLink('http://ui', 'default', 'inbound/b/k 1', 'r1'),
    'http://ui/namespaces/default/workflows/inbound%2Fb%2Fk%201/r1/history',
  );
  assert.equal(
    listLink('http://ui', 'default', "A = 'b'"),
    "http://ui/namespaces/default/workflows?query=A%20%3D%20'b'",
  );
});

test('docker-compose registers exactly the search attributes of contracts/search-attributes.ts, with their types', () => {
  const compose = readFileSync('docker-compose.yml', 'utf8');
  const line = compose.match(/for flag in ([^;]+); do/)?.[1];
  assert.ok(line, 'the registration loop is there');
  assert.deepEqual(
    line
      .replace(/\\\s*\n/g, ' ')
      .trim()
      .split(/\s+/),
    SEARCH_ATTRIBUTE_FLAGS,
  );
});
