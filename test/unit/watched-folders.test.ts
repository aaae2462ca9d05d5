// The folders a watcher watches besides INBOX: what the operator's list becomes, and how a
// STATUS answer becomes the counters the watcher compares (lib/imap/watched-folders.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notifiableFolder } from '../../lib/imap/notify';
import { statusMark } from '../../lib/imap/mailbox-marks';
import { MAX_WATCHED_FOLDERS, parseWatchedFolders, watchedFolderList } from '../../lib/imap/watched-folders';

describe('watched folders', () => {
  it('INBOX is always watched, in any case, so it is never listed; names are trimmed and kept once', () => {
    assert.deepEqual(watchedFolderList([' Archive ', 'inbox', 'INBOX', 'Archive', '', 'Lists/dev']), [
      'Archive',
      'Lists/dev',
    ]);
  });

  it('names keep their case (servers may tell "Archive" from "archive")', () => {
    assert.deepEqual(watchedFolderList(['Archive', 'archive']), ['Archive', 'archive']);
  });

  it('the command line: commas separate, none clears, the limit and control characters are refused', () => {
    assert.deepEqual(parseWatchedFolders('Archive, Lists.dev ,,'), ['Archive', 'Lists.dev']);
    assert.deepEqual(parseWatchedFolders('none'), []);
    assert.deepEqual(parseWatchedFolders('  '), []);
    const many = Array.from({ length: MAX_WATCHED_FOLDERS + 1 }, (_, i) => `F${i}`).join(',');
    assert.throws(() => parseWatchedFolders(many), /at most 20 folders/);
    assert.throws(() => parseWatchedFolders('Bad\nName'), /control character/);
  });

  it('NOTIFY is asked for plain ASCII names only (quoted strings); others are polled', () => {
    assert.ok(notifiableFolder('Archive'));
    assert.ok(notifiableFolder('Lists.dev team'));
    assert.ok(!notifiableFolder('Entwürfe'), 'modified UTF-7 on the wire');
    assert.ok(!notifiableFolder('Say "hi"'));
    assert.ok(!notifiableFolder('back\\slash'));
    assert.ok(!notifiableFolder(''));
  });

  it('a STATUS answer becomes a mark; without UIDVALIDITY, UIDNEXT or MESSAGES there is none', () => {
    assert.deepEqual(statusMark({ uidValidity: 7n, uidNext: 12, messages: 11, highestModseq: 99n }), {
      uidValidity: 7,
      uidNext: 12,
      exists: 11,
      highestModseq: '99',
    });
    assert.deepEqual(statusMark({ uidValidity: 7n, uidNext: 12, messages: 11 })?.highestModseq, null);
    assert.equal(statusMark({ uidNext: 12, messages: 11 }), null);
  });
});
