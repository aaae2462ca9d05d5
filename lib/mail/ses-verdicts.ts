// SES receipt verdicts (spam, virus, SPF, DKIM, DMARC). The "Received" notification carries
// them in `receipt.*Verdict`; SES also writes them into the stored message on top of the
// sender's header (X-SES-Spam-Verdict, X-SES-Virus-Verdict, Received-SPF and
// Authentication-Results: amazonses.com). The notification wins; the header is read only in
// the block SES prepends (its Received line first), because anything further down was
// written by the sender and proves nothing. No verdict (local stack, old objects) means
// "unknown", which changes nothing.
import { type SesVerdicts, type Verdict, VERDICT_NAMES, type VerdictName } from '../../contracts/inbound';
import type { HeaderBlock } from './headers';

const KNOWN: readonly string[] = ['PASS', 'FAIL', 'GRAY', 'PROCESSING_FAILED', 'DISABLED'];

function asVerdict(v: unknown): Verdict | undefined {
  const s = typeof v === 'string' ? v.trim().toUpperCase() : undefined;
  return s && KNOWN.includes(s) ? (s as Verdict) : undefined;
}

/** The verdicts of an SES notification's `receipt` object (SNS-unwrapped), if it has any. */
export function verdictsFromReceipt(receipt: unknown): SesVerdicts | undefined {
  if (!receipt || typeof receipt !== 'object') return undefined;
  const r = receipt as Record<string, { status?: unknown } | undefined>;
  const out: Partial<Record<VerdictName, Verdict>> = {};
  for (const name of VERDICT_NAMES) {
    const v = asVerdict(r[`${name}Verdict`]?.status);
    if (v) out[name] = v;
  }
  return Object.keys(out).length ? { ...out, source: 'notification' } : undefined;
}

// Fields SES puts on top of a received message, before the sender's own header.
const SES_BLOCK = new Set([
  'return-path',
  'received',
  'x-ses-spam-verdict',
  'x-ses-virus-verdict',
  'received-spf',
  'authentication-results',
  'x-ses-receipt',
  'x-ses-dkim-signature',
]);
const SES_RECEIVED = /\bby inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b/i;

/** Authentication-Results / Received-SPF results mapped onto the notification's values. */
function fromResult(result: string | undefined): Verdict | undefined {
  switch (result?.toLowerCase()) {
    case 'pass':
      return 'PASS';
    case 'fail':
      return 'FAIL';
    case 'softfail':
    case 'neutral':
    case 'none':
    case 'policy':
      return 'GRAY';
    case 'temperror':
    case 'permerror':
      return 'PROCESSING_FAILED';
    default:
      return undefined;
  }
}

/** Verdicts SES wrote into the stored message, read from SES's own block only. */
export function verdictsFromHeaders(block: HeaderBlock): SesVerdicts | undefined {
  const out: Partial<Record<VerdictName, Verdict>> = {};
  let receivedSeen = 0;
  for (const f of block.fields) {
    if (!SES_BLOCK.has(f.name)) break;
    if (f.name === 'received') {
      // SES's own Received line comes first; a second one belongs to the sender's path.
      if (++receivedSeen > 1 || !SES_RECEIVED.test(f.value)) break;
      continue;
    }
    if (receivedSeen === 0 && f.name !== 'return-path') break;
    if (f.name === 'x-ses-spam-verdict') out.spam ??= asVerdict(f.value);
    else if (f.name === 'x-ses-virus-verdict') out.virus ??= asVerdict(f.value);
    else if (f.name === 'received-spf') out.spf ??= fromResult(/^([a-z]+)/i.exec(f.value)?.[1]);
    else if (f.name === 'authentication-results' && /^amazonses\.com\s*;/i.test(f.value)) {
      for (const m of f.value.matchAll(/\b(spf|dkim|dmarc)\s*=\s*([a-z]+)/gi)) {
        const name = m[1].toLowerCase() as VerdictName;
        out[name] ??= fromResult(m[2]);
      }
    }
  }
  for (const k of VERDICT_NAMES) if (out[k] === undefined) delete out[k];
  return Object.keys(out).length ? { ...out, source: 'headers' } : undefined;
}

/** Notification first, header second, verdict by verdict. */
export function mergeVerdicts(
  notification: SesVerdicts | undefined,
  headers: SesVerdicts | undefined,
): SesVerdicts | undefined {
  if (!notification) return headers;
  if (!headers) return notification;
  const out: SesVerdicts = { ...headers, ...notification, source: 'notification+headers' };
  for (const k of VERDICT_NAMES) out[k] = notification[k] ?? headers[k];
  for (const k of VERDICT_NAMES) if (out[k] === undefined) delete out[k];
  return out;
}

/** The failed sender-authentication checks (SPF, DKIM, DMARC), e.g. ['DKIM', 'DMARC']. */
export function failedAuthentication(v: SesVerdicts | undefined): string[] {
  return (['spf', 'dkim', 'dmarc'] as const).filter((k) => v?.[k] === 'FAIL').map((k) => k.toUpperCase());
}

/** SES vouches for the sender: SPF or DKIM passed and DMARC did not fail. */
export function authenticated(v: SesVerdicts | undefined): boolean {
  return !!v && (v.spf === 'PASS' || v.dkim === 'PASS') && v.dmarc !== 'FAIL';
}

/** Compact form for S3 metadata and the Web UI: "spam=PASS virus=PASS spf=PASS dkim=FAIL dmarc=GRAY". */
export function compactVerdicts(v: SesVerdicts | undefined): string | undefined {
  if (!v) return undefined;
  const parts = VERDICT_NAMES.filter((k) => v[k]).map((k) => `${k}=${v[k]}`);
  return parts.length ? parts.join(' ') : undefined;
}
