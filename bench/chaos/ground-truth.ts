// Ground truth for the chaos harness: what each generated email must (and must not)
// cause, and the comparison with what the mail servers actually stored. Pure functions,
// so the arithmetic that decides "lost" and "duplicate" is unit-tested on its own.

export interface Expectation {
  /** S3 key of the email. */
  key: string;
  /** Message-ID header as generated (with angle brackets). */
  messageId: string;
  /** Mailboxes that must receive exactly one copy. */
  deliverTo: string[];
  /** Addresses that must never receive this message (blocked recipients, injected Bcc). */
  mustNotReach: string[];
}

export interface Delivery {
  recipient: string;
  messageId?: string;
}

export interface Tally {
  emails: number;
  /** (email, mailbox) pairs that must be delivered. */
  expected: number;
  /** Pairs delivered at least once. */
  delivered: number;
  /** Extra copies beyond the first, summed over all pairs. */
  duplicates: number;
  /** Pairs never delivered. */
  lost: number;
  /** Copies that reached an address that must never get this message. */
  strays: number;
  /** Up to ten examples of lost pairs, for the report. */
  lostExamples: string[];
  /** The keys of the emails with an extra copy somewhere. */
  duplicateKeys: string[];
}

const norm = (s: string) => s.trim().toLowerCase();

export function tally(expectations: Expectation[], deliveries: Delivery[]): Tally {
  const copies = new Map<string, number>();
  for (const d of deliveries) {
    if (!d.messageId) continue;
    const k = `${norm(d.messageId)} ${norm(d.recipient)}`;
    copies.set(k, (copies.get(k) ?? 0) + 1);
  }
  const t: Tally = {
    emails: expectations.length,
    expected: 0,
    delivered: 0,
    duplicates: 0,
    lost: 0,
    strays: 0,
    lostExamples: [],
    duplicateKeys: [],
  };
  for (const e of expectations) {
    for (const to of e.deliverTo) {
      t.expected++;
      const n = copies.get(`${norm(e.messageId)} ${norm(to)}`) ?? 0;
      if (n === 0) {
        t.lost++;
        if (t.lostExamples.length < 10) t.lostExamples.push(`${e.key} → ${to}`);
      } else {
        t.delivered++;
        t.duplicates += n - 1;
        if (n > 1 && !t.duplicateKeys.includes(e.key)) t.duplicateKeys.push(e.key);
      }
    }
    for (const to of e.mustNotReach) t.strays += copies.get(`${norm(e.messageId)} ${norm(to)}`) ?? 0;
  }
  return t;
}
