import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBlockingPattern, matchesPattern } from '../../lib/wildcard';

test('domain wildcard matches any sender of that domain, case-insensitively', () => {
  assert.equal(matchesPattern('Spammer@SPAM.example', '*@spam.example'), true);
  assert.equal(matchesPattern('friend@example.org', '*@spam.example'), false);
  // a subdomain is a different domain unless the pattern says so
  assert.equal(matchesPattern('a@mx.spam.example', '*@spam.example'), false);
  assert.equal(matchesPattern('a@mx.spam.example', '*@*.spam.example'), true);
});

test('exact addresses, ? and characters that are special to glob libraries', () => {
  assert.equal(matchesPattern('bad@x.org', 'BAD@x.org'), true);
  assert.equal(matchesPattern('bad2@x.org', 'bad@x.org'), false);
  assert.equal(matchesPattern('ab@x.org', 'a?@x.org'), true);
  assert.equal(matchesPattern('a+tag@x.org', 'a+tag@x.org'), true);
  assert.equal(matchesPattern('a{b}@x.org', 'a{b}@x.org'), true);
  assert.equal(matchesPattern('a/b@x.org', '*@x.org'), true);
  assert.equal(matchesPattern('', '*'), false);
});

test('findBlockingPattern returns the first matching pattern', () => {
  assert.equal(findBlockingPattern('news@shop.example', ['x@y.z', 'news*@*', '*@shop.example']), 'news*@*');
  assert.equal(findBlockingPattern('ok@fine.example', ['*@spam.example']), undefined);
});
