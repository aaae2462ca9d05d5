// "Is this automatic mail?" and "may an out-of-office reply go out?": RFC 3834, RFC 5230
// (Sieve vacation) and Dovecot Pigeonhole's vacation checks, plus what real mail systems
// write instead of following them. Erring on the side of silence is the point: one
// vacation reply to a bounce, a list or a forged sender is backscatter, and backscatter is
// how an SES account gets suspended. Every rule is listed, with its source, in
// docs/auto-replies.md (a unit test keeps the two in step).
import type { AutomaticClass } from '../../contracts/inbound';
import { addressList, localPartOf, normalizeAddress } from './address';
import type { BounceFacts } from './bounce';
import { first, type HeaderBlock } from './headers';
import type { SesVerdicts } from '../../contracts/inbound';
import { authenticated, failedAuthentication } from './ses-verdicts';
import type { SesFeedback } from './sns-mail';
import { LEGACY_LOOP_HEADER, LOOP_HEADER } from '../../contracts/email-status';

/** What the rules look at; built by lib/mail/summarize.ts. */
export interface MailFacts {
  block: HeaderBlock;
  /** Subject with RFC 2047 encoded-words decoded. */
  subject?: string;
  /** Lower-case MIME types of the parts declared in the body (a light scan, not a parse). */
  partTypes: readonly string[];
  /** The start of the body as text, whitespace collapsed (for the phrases auto-replies and bounces use). */
  bodyText?: string;
  verdicts?: SesVerdicts;
  bounce?: BounceFacts;
  sesFeedback?: SesFeedback;
}

export type { AutomaticClass };

export interface Hit {
  reason: string;
  class: AutomaticClass;
}

/** A rule that makes a message automatic mail (which also stops outside forwards). */
export interface AutomaticRule {
  id: string;
  /** Where the rule comes from (RFC, Pigeonhole, a vendor's header). */
  source: string;
  check(f: MailFacts): Hit | undefined;
}

/** A rule that only stops replies: the mail may be a person's, but answering it is unsafe. */
export interface ReplyRule {
  id: string;
  source: string;
  check(f: MailFacts): string | undefined;
}

const report = (reason: string | undefined): Hit | undefined => (reason ? { reason, class: 'report' } : undefined);
const bulk = (reason: string | undefined): Hit | undefined => (reason ? { reason, class: 'bulk' } : undefined);

const h = (f: MailFacts, name: string) => f.block.headers.get(name.toLowerCase()) ?? [];
const one = (f: MailFacts, name: string) => first(f.block.headers, name);

// Auto-replies from systems that do not set Auto-Submitted (Lotus Notes, old Exchange,
// vacation(1), ticket systems) still say so in the subject; replying to them is how two
// vacations loop. Read receipts without multipart/report say so too.
const AUTO_SUBJECT = new RegExp(
  [
    '^\\s*auto(matic|matische?)?[ _-]?(reply|response|responder|antwort|answer|svar|vastaus|risposta|respuesta|r[ée]ponse|resposta)\\b',
    '^\\s*auto\\s*:',
    '^\\s*\\[auto',
    '\\bauto-?(reply|response|responder)\\b',
    'out[ -]of[ -](the[ -])?office',
    '^\\s*ooo\\b',
    'abwesenheit',
    'automatische (antwort|benachrichtigung)',
    'r[ée]ponse automatique',
    'respuesta autom[áa]tica',
    'risposta automatica',
    'resposta autom[áa]tica',
    'automatisch antwoord',
    'odpowied[źz] automatyczna',
    'automatyczna odpowied',
    'automatick[áa] odpov[ěe][ďd]',
    'automatikus v[áa]lasz',
    'automaattinen vastaus',
    'otomatik (yan[ıi]t|cevap)',
    'автоответ',
    'автоматический ответ',
    'αυτόματη απάντηση',
    '自動(応答|返信)',
    '自动(回复|答复)',
    '^\\s*(on )?vacation\\b',
    'away from (the )?office',
    "^\\s*(i am|i'm) (currently )?(away|out)\\b",
    '^\\s*(read|gelesen|lu|le[ií]do|letto|gelezen)\\s*:',
    '\\b(read|return|delivery) receipt\\b',
    '^\\s*(delivery status notification|undeliver(able|ed)|returned mail|mail delivery (failed|failure|system))',
    '\\b(delivery (failure|failed|has failed|delayed|problem|notification)|failure notice|non[- ]?delivery|could not be delivered|not delivered|returned to sender|mail system error|warning: could not send|delayed mail|message delayed|unzustellbar|nicht zugestellt|non remis|no (se pudo|pudo ser) entregar|niedostarczalna)\\b',
    '\\b(out of the office|fuera de (la )?oficina|abwesend|afwezig|ausser haus|au(ß|ss)er haus|absence|en cong[ée]s?|vacaciones|urlaub|ferie|semester|lomalla)\\b',
    '\\b(abuse report|complaint about (a |your )?message|tos notification|spam report|feedback report)\\b',
  ].join('|'),
  'i',
);

// What auto-replies and bounces say in their first lines when they set no header at all.
const AUTO_BODY = new RegExp(
  [
    'this is an? (automatic(ally generated)?|automated|auto-?generated) (reply|response|message|notification|e-?mail|notice)',
    '\\b(automatic|automated|auto)[ -]?(reply|response)\\b',
    "\\bi(?: am|'m) (?:currently )?(?:out of (?:the )?office|away from (?:the |my )?(?:office|desk|email)|on (?:vacation|holiday|annual leave|leave|parental leave|sick leave))",
    '\\b(ich bin|bin ich) (?:.{0,60}? )?(nicht im b[üu]ro|abwesend|im urlaub)',
    '\\bje suis (actuellement )?absente?',
    '\\b(this message was created automatically by mail delivery software|delivery to the following recipients? (failed|has been delayed)|could not be delivered to|message (could not be|was not|was un)(delivered|deliverable)|undeliverable|returned to sender|user unknown|mailbox (unavailable|not found|full)|permanent (error|failure)|delivery status notification)',
    '\\b(please )?do not reply to this (e-?mail|message)',
    '\\b(estoy|me encuentro) (fuera de la oficina|de vacaciones|ausente)',
    '\\bik ben (momenteel |tot .{0,40}? )?(afwezig|met vakantie|niet op kantoor)',
    '\\bsono (attualmente )?(fuori (ufficio|sede)|in ferie|assente)',
    '\\bestou (ausente|de f[ée]rias|fora do escrit[óo]rio)',
    '\\bjag är (ledig|borta|på semester|tjänstledig)',
    '\\bjestem (nieobecn|na urlopie)',
    '\\bfeedback-type: ?(abuse|fraud|virus|other|not-spam|auth-failure)\\b',
  ].join('|'),
  'i',
);

// List and bulk software that marks its mail without (or besides) RFC 2369 List-* fields.
const LIST_SOFTWARE = [
  'errors-to',
  'x-mailman-version',
  'x-beenthere',
  'x-ml-name',
  'x-ml-count',
  'x-mlserver',
  'x-loop',
  'x-listname',
  'x-list',
  'x-listserver',
  'x-list-administrivia',
  'x-mailing-list',
  'mailing-list',
  'x-ecartis-version',
  'x-ecartis-loop',
  'x-sympa-to',
  'x-yahoo-newman-property',
  'x-google-group-id',
  'x-ezmlm-version',
];
// Auto-responders and mail systems that mark their automatic mail with a header of their own.
const AUTOREPLY_HEADERS = [
  'x-autoreply',
  'x-autorespond',
  'x-auto-response',
  'x-autogenerated',
  'x-autoreply-from',
  'x-mail-autoreply',
  'x-autorespond-from',
  'x-vacation',
  'x-ms-exchange-inbox-rules-loop',
  'x-ms-exchange-generated-message-source',
  'x-report-abuse-to-auto',
  'x-cron-env',
];
// Challenge-response systems (Bluebottle, Boxbe, TMDA) answer every message automatically.
const CHALLENGE_HEADERS = [
  'x-bluebottle-request',
  'x-boxbe-id',
  'x-challenge-response',
  'x-tmda-fingerprint',
  'x-spamarrest-noauth',
];
const REPORT_PARTS = [
  'message/delivery-status',
  'message/global-delivery-status',
  'message/disposition-notification',
  'message/global-disposition-notification',
  'message/feedback-report',
  'text/rfc822-headers',
  'message/global-headers',
];

// microsoftexchange<32 hex>: the sender of Exchange's own delivery reports.
const DAEMON =
  /^(mailer-?daemon|mail-?daemon|postmaster|mdaemon|daemon|root|nobody|auto-?reply|auto-?responder|vacation|scomp|fbl|feedbackloop|abuse-report|microsoftexchange[0-9a-f]{32})$/;
const LIST_ROBOT =
  /^(owner-.+|.+-owner|.+-request|.+-bounces?|bounces?|bounce-.+|bounces-.+|.+-admin|listserv|majordomo|ezmlm|list-?manager|sympa|mailman|listar|smartlist)$/;
const NO_REPLY =
  /^(no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|no[-_.]?response|notifications?|notify|mailer|auto-?mail(er)?)([-_.].*)?$|[-_.]no[-_.]?reply$/;

/** The sender addresses the rules look at: Return-Path, From, Sender (RFC 5230 looks at the envelope sender). */
function senders(f: MailFacts): string[] {
  return [
    ...new Set([
      ...addressList(one(f, 'return-path')),
      ...addressList(one(f, 'from')),
      ...addressList(one(f, 'sender')),
    ]),
  ];
}

/** A local part without its sub-address (`bounces+123` is `bounces`). */
function bareLocal(address: string): string {
  return localPartOf(address).replace(/\+.*$/, '');
}

/** Rules that make a message automatic mail, in the order they are checked. */
export const AUTOMATIC_RULES: AutomaticRule[] = [
  {
    id: 'loop-marker',
    source: 'mailroom (X-Mailroom-Processed, and X-SES-Worker-Processed of the worker it replaces)',
    check: (f) =>
      report(h(f, LOOP_HEADER).length || h(f, LEGACY_LOOP_HEADER).length ? 'our own loop marker header' : undefined),
  },
  {
    id: 'auto-submitted',
    source: 'RFC 3834 section 5; RFC 5230 section 4.6; Pigeonhole',
    check(f) {
      for (const v of h(f, 'auto-submitted')) {
        const token = v
          .replace(/\([^)]*\)/g, '')
          .split(';')[0]
          .trim()
          .toLowerCase();
        if (token === 'no') continue;
        const reason = `Auto-Submitted: ${v.slice(0, 60)}`;
        return token === 'auto-generated' || token === 'auto-notified' ? bulk(reason) : report(reason);
      }
      return undefined;
    },
  },
  {
    id: 'multipart-report',
    source: 'RFC 6522 (DSN RFC 3464, MDN RFC 8098, ARF RFC 5965)',
    check: (f) =>
      report(
        /^\s*multipart\/report\b/i.test(one(f, 'content-type') ?? '')
          ? 'multipart/report (delivery, read or feedback report)'
          : undefined,
      ),
  },
  {
    id: 'report-part',
    source: 'RFC 3464, RFC 6533, RFC 8098, RFC 5965 part types inside the message',
    check: (f) => {
      const t = f.partTypes.find((p) => REPORT_PARTS.includes(p));
      return report(t ? `a ${t} part (a report inside the message)` : undefined);
    },
  },
  {
    id: 'ses-notification',
    source: 'Amazon SES notifications sent by SNS as mail',
    check: (f) => report(f.sesFeedback ? `SES ${f.sesFeedback.type} notification` : undefined),
  },
  {
    id: 'bounce',
    source: 'RFC 3464, RFC 5965 and what MTAs send instead (MAILER-DAEMON senders, bounce subjects from <>)',
    check: (f) =>
      report(
        f.bounce
          ? f.bounce.kind === 'complaint'
            ? 'complaint (feedback report)'
            : 'bounce or delivery report'
          : undefined,
      ),
  },
  {
    id: 'null-return-path',
    source: 'RFC 3834 section 3.1.1; RFC 5321 section 4.5.5; RFC 5230 section 4.5; Pigeonhole',
    check: (f) => {
      const rp = one(f, 'return-path');
      return report(
        rp !== undefined && /^\s*(<\s*>)?\s*$/.test(rp)
          ? 'empty Return-Path (a bounce or other automatic message)'
          : undefined,
      );
    },
  },
  {
    id: 'failed-recipients',
    source: 'Exim bounces (X-Failed-Recipients)',
    check: (f) => report(h(f, 'x-failed-recipients').length ? 'X-Failed-Recipients header (a bounce)' : undefined),
  },
  {
    id: 'autoreply-headers',
    source: 'auto-responders and mail systems: ' + AUTOREPLY_HEADERS.join(', '),
    check: (f) => {
      const name = AUTOREPLY_HEADERS.find((n) => h(f, n).length);
      return report(name ? `${name} header (automatic message)` : undefined);
    },
  },
  {
    id: 'auto-response-suppress',
    source: 'Microsoft X-Auto-Response-Suppress ([MS-OXCMAIL] 2.2.3.2.20); Pigeonhole',
    check: (f) => {
      const flags = h(f, 'x-auto-response-suppress')
        .flatMap((v) => v.split(/[,;\s]+/))
        .map((x) => x.toLowerCase());
      const hit = flags.find((x) => x === 'all' || x === 'oof' || x === 'autoreply');
      return report(hit ? `X-Auto-Response-Suppress: ${hit}` : undefined);
    },
  },
  {
    id: 'precedence',
    source: 'Precedence: bulk, list, junk (RFC 3834 section 2 notes; Pigeonhole), auto_reply (vacation(1))',
    check(f) {
      for (const v of [...h(f, 'precedence'), ...h(f, 'x-precedence')]) {
        const p = v.trim().toLowerCase();
        if (['bulk', 'list', 'junk'].includes(p)) return bulk(`Precedence: ${p}`);
        if (p === 'auto_reply' || p === 'auto-reply') return report(`Precedence: ${p}`);
      }
      return undefined;
    },
  },
  {
    id: 'list-headers',
    source: 'RFC 2369, RFC 2919, RFC 8058 List-* fields; RFC 5230 section 4.6; Pigeonhole',
    check: (f) => {
      const name = [...f.block.headers.keys()].find((n) => n.startsWith('list-'));
      return bulk(name ? `${name} header (mailing list)` : undefined);
    },
  },
  {
    id: 'list-software',
    source: 'mailing list software headers: ' + LIST_SOFTWARE.join(', ') + ', Delivered-To: mailing list',
    check: (f) => {
      const name =
        LIST_SOFTWARE.find((n) => h(f, n).length) ??
        (h(f, 'delivered-to').some((v) => /^mailing list\b/i.test(v)) ? 'delivered-to: mailing list' : undefined);
      return bulk(name ? `${name} header (mailing list software)` : undefined);
    },
  },
  {
    id: 'challenge-response',
    source: 'challenge-response systems: ' + CHALLENGE_HEADERS.join(', '),
    check: (f) => {
      const name = CHALLENGE_HEADERS.find((n) => h(f, n).length);
      return report(name ? `${name} header (challenge-response system)` : undefined);
    },
  },
  {
    id: 'system-sender',
    source:
      'RFC 5230 section 4.5 and Pigeonhole (MAILER-DAEMON, LISTSERV, majordomo, owner-*, *-request); RFC 2142 and list software (postmaster, *-owner, *-bounces, *-admin); no-reply senders',
    check(f) {
      for (const a of senders(f)) {
        const local = bareLocal(a);
        if (DAEMON.test(local)) return report(`system sender ${a}`);
        if (LIST_ROBOT.test(local)) return bulk(`list or bounce address ${a}`);
        if (NO_REPLY.test(local)) return bulk(`no-reply sender ${a}`);
      }
      return undefined;
    },
  },
  {
    id: 'auto-subject',
    source: 'subjects of auto-replies, read receipts and bounces in many languages (systems that set no header)',
    check: (f) =>
      report(
        [f.subject, one(f, 'subject')].some((x) => x && AUTO_SUBJECT.test(x))
          ? 'subject says it is an automatic reply or report'
          : undefined,
      ),
  },
  {
    id: 'body-phrases',
    source: 'what auto-replies and bounces without any header say in their first lines',
    check: (f) =>
      report(
        f.bodyText && AUTO_BODY.test(f.bodyText) ? 'the text says it is an automatic reply or a bounce' : undefined,
      ),
  },
];

export interface Automatic {
  rule: string;
  reason: string;
  class: AutomaticClass;
}

/** The first automatic-mail rule that matches, if any: then it is automatic mail. */
export function automaticMail(f: MailFacts): Automatic | undefined {
  // A report anywhere wins over bulk (a DSN with Auto-Submitted: auto-generated is a report).
  let firstBulk: Automatic | undefined;
  for (const rule of AUTOMATIC_RULES) {
    const hit = rule.check(f);
    if (hit?.class === 'report') return { rule: rule.id, ...hit };
    if (hit) firstBulk ??= { rule: rule.id, ...hit };
  }
  return firstBulk;
}

/** Rules that only stop replies (the mail may be a person's, but answering it is unsafe). */
export const REPLY_RULES: ReplyRule[] = [
  {
    id: 'header-doubt',
    source: 'mailroom fail-safe: a header block that cannot be read with confidence',
    check: (f) => (f.block.doubt ? `header block unreadable: ${f.block.doubt}` : undefined),
  },
  {
    id: 'ses-virus',
    source: 'SES receipt virus verdict (notification, X-SES-Virus-Verdict)',
    check: (f) => (f.verdicts?.virus === 'FAIL' ? 'SES virus verdict FAIL' : undefined),
  },
  {
    id: 'ses-spam',
    source: 'SES receipt spam verdict (notification, X-SES-Spam-Verdict)',
    check: (f) => (f.verdicts?.spam === 'FAIL' ? 'SES spam verdict FAIL' : undefined),
  },
  {
    id: 'auth-failed',
    source:
      'SES receipt SPF, DKIM and DMARC verdicts (notification, Received-SPF, Authentication-Results: amazonses.com); RFC 3834 section 2 (forged senders)',
    check: (f) => {
      const failed = failedAuthentication(f.verdicts);
      return failed.length ? `sender authentication failed (${failed.join(', ')})` : undefined;
    },
  },
  {
    id: 'spam-flag',
    source: 'an upstream spam filter marked it (X-Spam-Flag: YES, X-Spam-Status: Yes)',
    check: (f) =>
      h(f, 'x-spam-flag').some((v) => /^\s*yes\b/i.test(v)) || h(f, 'x-spam-status').some((v) => /^\s*yes\b/i.test(v))
        ? 'marked as spam upstream'
        : undefined,
  },
];

export type AutoReplyDecision = { reply: true; to: string } | { reply: false; reason: string; rule: string };

/**
 * Whether an out-of-office reply may answer this message, and to which address (RFC 3834
 * section 4, RFC 5230 section 4.5: the envelope sender, which SES writes as Return-Path).
 * The per-recipient checks (addressed directly, not to itself, once per period) are
 * made by the workflow (lib/mail/rule-gates.ts) and the sending activity.
 */
export function autoReplyDecision(f: MailFacts, automatic = automaticMail(f)): AutoReplyDecision {
  for (const rule of REPLY_RULES) {
    const reason = rule.check(f);
    if (reason) return { reply: false, reason, rule: rule.id };
  }
  if (automatic) return { reply: false, reason: automatic.reason, rule: automatic.rule };
  const rp = one(f, 'return-path');
  if (rp === undefined)
    return { reply: false, reason: 'no Return-Path: the envelope sender is unknown', rule: 'no-return-path' };
  const to = normalizeAddress(rp.replace(/^\s*<\s*|\s*>\s*$/g, ''));
  if (!to) return { reply: false, reason: 'Return-Path is not one deliverable address', rule: 'bad-return-path' };
  return { reply: true, to };
}

export type ForwardDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * Whether the message may be forwarded to an address outside our domains (forwards
 * within our domains are deliveries and always go). Reports and auto-replies never go
 * out; bulk mail only when SES authenticated its sender; spam and unreadable headers never.
 */
export function outsideForwardDecision(f: MailFacts, automatic = automaticMail(f)): ForwardDecision {
  if (f.block.doubt) return { allowed: false, reason: `header block unreadable: ${f.block.doubt}` };
  if (f.verdicts?.spam === 'FAIL' || f.verdicts?.virus === 'FAIL')
    return { allowed: false, reason: `SES ${f.verdicts.virus === 'FAIL' ? 'virus' : 'spam'} verdict FAIL` };
  if (automatic?.class === 'report') return { allowed: false, reason: `automatic mail: ${automatic.reason}` };
  if (automatic && !authenticated(f.verdicts))
    return { allowed: false, reason: `automatic mail from an unauthenticated sender: ${automatic.reason}` };
  return { allowed: true };
}

/** Subject of the reply (RFC 3834 section 3.1.5 suggests the original subject with a prefix). */
export function autoReplySubject(original: string | undefined): string {
  const s = (original ?? '').replace(/[\r\n]+/g, ' ').trim();
  return s ? `Auto: ${s}` : 'Auto: (no subject)';
}

/** Every rule id, for docs/auto-replies.md (a unit test checks each one is described there). */
export function ruleIds(): string[] {
  return [...AUTOMATIC_RULES, ...REPLY_RULES].map((r) => r.id).concat(['no-return-path', 'bad-return-path']);
}
