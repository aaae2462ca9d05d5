import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressList, normalizeAddress } from '../../lib/mail/address';
import { parseHeaderBlock } from '../../lib/mail/headers';
import { chooseRecipients } from '../../lib/mail/recipients';

test('one normal form: quotes that are not needed and comments go, case folds', () => {
  assert.equal(normalizeAddress('"q"@example.com'), 'q@example.com');
  assert.equal(normalizeAddress('a(c)@example.com'), 'a@example.com');
  assert.equal(normalizeAddress('Bob <Bob@Example.COM>'), 'bob@example.com');
  assert.equal(normalizeAddress('<x.y+tag@sub.example.org.>'), 'x.y+tag@sub.example.org');
});

test('what is not one deliverable mailbox is refused', () => {
  for (const bad of [
    '"john doe"@example.com',
    '"a@b"@example.com',
    '"x\\\r\n Bcc: v@evil.example"@example.com',
    'a..b@example.com',
    '.a@example.com',
    'user@[1.2.3.4]',
    'a@localhost',
    'bad@',
    '@x.org',
    'a@b.example, c@d.example',
    '',
    `${'a'.repeat(65)}@example.com`,
    'a@-x.example',
  ]) {
    assert.equal(normalizeAddress(bad), undefined, JSON.stringify(bad));
  }
});

test('address lists: groups flattened, junk dropped, each once', () => {
  assert.deepEqual(addressList('team: A@x.org, "B" <b@x.org>;, a@X.org, "q"@x.org, not an address'), [
    'a@x.org',
    'b@x.org',
    'q@x.org',
  ]);
});

test('recipients from the envelope and from headers use the same normal form', () => {
  const h = parseHeaderBlock('To: "q"@example.com, a(c)@example.com\r\n\r\n');
  assert.deepEqual(chooseRecipients({ headers: h, domain: 'example.com' }).recipients, [
    'q@example.com',
    'a@example.com',
  ]);
  const e = chooseRecipients({
    envelope: ['"q"@example.com', 'A(c)@Example.com', '"x y"@example.com'],
    headers: h,
    domain: 'example.com',
  });
  assert.deepEqual(e.recipients, ['q@example.com', 'a@example.com']);
  assert.deepEqual(e.unusable, ['"x y"@example.com']);
});
