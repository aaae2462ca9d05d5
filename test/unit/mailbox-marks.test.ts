// lib/imap/mailbox-marks.ts: when the IDLE watcher asks for a sync without having seen an event
// (a change between two watches, or PostgreSQL behind the server after a start).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markChanged, statusMark, storeBehind } from '../../lib/imap/mailbox-marks';
import type { MailboxMark } from '../../contracts/watch';

const box: MailboxMark = { uidValidity: 7, uidNext: 11, exists: 10, highestModseq: '500' };
const stored = { folder: 'INBOX', uidValidity: 7, lastUid: 10, highestModseq: '500' };

describe('mailbox marks', () => {
  it('sees any change between two looks', () => {
    assert.equal(markChanged(box, { ...box }), false);
    assert.equal(markChanged(box, { ...box, uidNext: 12, exists: 11 }), true, 'new mail');
    assert.equal(markChanged(box, { ...box, exists: 9 }), true, 'a deletion');
    assert.equal(markChanged(box, { ...box, highestModseq: '501' }), true, 'a flag change (CONDSTORE)');
    assert.equal(markChanged(box, { ...box, uidValidity: 8 }), true, 'the mailbox recreated');
    assert.equal(
      markChanged({ ...box, highestModseq: null }, { ...box, highestModseq: null }),
      false,
      'no CONDSTORE: no change',
    );
  });

  it('reads a STATUS answer against the EXAMINE it follows: missing counters from it, no mod-sequence without CONDSTORE', () => {
    const examined: MailboxMark = { uidValidity: 7, uidNext: 10, exists: 9, highestModseq: '50' };
    assert.deepEqual(statusMark({ uidNext: 12, messages: 11, highestModseq: 60n }, examined), {
      uidValidity: 7,
      uidNext: 12,
      exists: 11,
      highestModseq: '60',
    });
    assert.equal(
      statusMark(
        { uidValidity: 7, uidNext: 12, messages: 11, highestModseq: 60n },
        { ...examined, highestModseq: null },
      )?.highestModseq,
      null,
    );
  });

  it('finds PostgreSQL behind the server', () => {
    assert.equal(storeBehind(stored, 10, box), false, 'in step');
    assert.equal(storeBehind(null, 0, box), true, 'never synced');
    assert.equal(storeBehind({ ...stored, uidValidity: 6 }, 10, box), true, 'recreated');
    assert.equal(storeBehind(stored, 10, { ...box, uidNext: 12, exists: 11 }), true, 'new mail');
    assert.equal(storeBehind(stored, 11, box), true, 'deleted on the server');
    assert.equal(storeBehind(stored, 10, { ...box, highestModseq: '600' }), true, 'flags changed');
    assert.equal(storeBehind({ ...stored, highestModseq: null }, 10, box), false, 'no stored mod-sequence');
    assert.equal(
      storeBehind({ ...stored, highestModseq: '9223372036854775806' }, 10, {
        ...box,
        highestModseq: '9223372036854775807',
      }),
      true,
      'mod-sequences beyond Number compared exactly',
    );
  });
});
