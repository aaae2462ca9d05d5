// The text a message is searched by, besides its headers: its text body (text/plain, or the
// text of its text/html when it has no plain part), extracted once when the message is stored
// and kept in messages.body_text (migrations/003_search.sql). Bounded: the first
// BODY_TEXT_MAX_CHARS characters are indexed; a longer body is searchable by its beginning.
import { simpleParser } from 'mailparser';
import { cleanText } from './storable';

/** Characters of body text kept per message (a tsvector holds at most 1 MiB; most mail is far shorter). */
export const BODY_TEXT_MAX_CHARS = 64 * 1024;
/** HTML above this size is not converted to text (html-to-text's time grows with it). */
const MAX_HTML_TO_CONVERT = 1024 * 1024;

/**
 * The message's body text, cleaned for PostgreSQL (lib/sync-store/storable.ts: no NUL or
 * other controls, no lone surrogates), at most BODY_TEXT_MAX_CHARS characters; '' when the
 * message has none or its MIME cannot be parsed (the message is still stored and searchable
 * by its headers: a hostile body must never stop a sync).
 */
export async function extractBodyText(raw: Buffer): Promise<string> {
  try {
    const parsed = await simpleParser(raw, {
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
      maxHtmlLengthToParse: MAX_HTML_TO_CONVERT,
    });
    const text = typeof parsed.text === 'string' ? parsed.text : '';
    // Runs of whitespace carry nothing for search; collapsing them lets more words fit.
    return cleanText(
      text
        .slice(0, BODY_TEXT_MAX_CHARS * 2)
        .replace(/\s+/g, ' ')
        .trim(),
      BODY_TEXT_MAX_CHARS,
    );
  } catch {
    return '';
  }
}
