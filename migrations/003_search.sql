-- Search over synced mail (lib/sync-store/search.ts), and system flags in one canonical form.
--
-- messages gains:
--   body_text      the message's text body (text/plain, or text made from text/html), at most
--                  64 KiB of it, extracted with mailparser when the row is stored
--                  (lib/sync-store/search-text.ts). NULL: never extracted (rows from before this
--                  migration until the backfill reached them, or stored without their body).
--   search_date    the date results are ordered and filtered by: INTERNALDATE (when the server
--                  got the message; a Date header is the sender's claim), else the Date header,
--                  else when the row was stored. Never NULL once indexed.
--   search_vector  subject (weight A), sender (B), recipients (C) and body_text (D), one
--                  `english` text search configuration for every message and every query.
--
-- All three are filled by the trigger below on every insert, whatever the writer (so a worker
-- of the previous build still running during a deploy stores searchable, canonical rows too).
-- The columns are added without a default, so this migration rewrites nothing: rows from before
-- it keep search_vector NULL and are indexed afterwards by the batched backfill
-- (lib/sync-store/search-backfill.ts; npm run db:setup runs it after the migrations), a few
-- hundred rows per short transaction, so no lock is held on the table for longer than one batch.
-- A generated column (GENERATED ALWAYS AS ... STORED) would have rewritten the whole table,
-- raw bodies included, under an ACCESS EXCLUSIVE lock: sync and search stopped for as long as
-- that takes, and body_text could not have been filled in SQL anyway (MIME is parsed in Node).
--
-- Why one `english` configuration rather than `simple` or a language per message: index and
-- query must use the same configuration, or a word is stemmed one way in the index and another
-- way in the query and never matches. With `english` every query finds English words in other
-- forms (invoices, invoiced, invoice) and still finds exact words of any other language (they
-- are stemmed the same way on both sides). A language per message would need a language
-- detector (Content-Language is rarely sent) and would make one query match a message only
-- when it was stemmed with the message's configuration. Changing the configuration later is a
-- new migration that redefines mailroom_search_vector and re-runs the backfill.
--
-- Flags: IMAP system flags are case-insensitive (RFC 3501 §2.3.2) and some servers send `\seen`;
-- they are stored as `\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, `\Recent` (the
-- store canonicalises before writing: lib/sync-store/flags.ts; this trigger does it for any
-- other writer, and the backfill for rows from before). Keywords are stored as sent.

ALTER TABLE messages
  ADD COLUMN body_text text,
  ADD COLUMN search_date timestamptz,
  ADD COLUMN search_vector tsvector;

-- Mirrors canonicalFlag in lib/sync-store/flags.ts (a test compares the two).
CREATE FUNCTION mailroom_canonical_flag(flag text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE lower(flag)
    WHEN '\seen' THEN '\Seen'
    WHEN '\answered' THEN '\Answered'
    WHEN '\flagged' THEN '\Flagged'
    WHEN '\deleted' THEN '\Deleted'
    WHEN '\draft' THEN '\Draft'
    WHEN '\recent' THEN '\Recent'
    ELSE flag
  END
$$;

-- Canonical flags in the given order, a duplicate (`\Seen` and `\seen`) kept once. The order is
-- kept rather than re-sorted: the store sorts in JavaScript, and a collation's order could
-- differ from it and make every flag comparison see a change.
CREATE FUNCTION mailroom_canonical_flags(flags text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(c.flag ORDER BY c.first), '{}')
  FROM (
    SELECT mailroom_canonical_flag(f) AS flag, min(i) AS first
    FROM unnest(flags) WITH ORDINALITY AS u(f, i)
    GROUP BY 1
  ) c
$$;

-- An address as searchable words: the whole address stays one lexeme (a query for
-- alice@example.com matches it exactly) and its parts are words too (alice, example, com, and
-- the display name), so a query for a name, a local part or a domain finds it.
CREATE FUNCTION mailroom_address_words(addresses text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT addresses || ' ' || regexp_replace(addresses, '[@.<>"_+=-]+', ' ', 'g')
$$;

-- Bounded inputs: a tsvector holds at most 1 MiB, and a message may name 1000 recipients.
CREATE FUNCTION mailroom_search_vector(subject text, from_address text, to_addresses text[], body_text text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector('english'::regconfig, left(coalesce(subject, ''), 4000)), 'A')
      || setweight(to_tsvector('english'::regconfig, mailroom_address_words(left(coalesce(from_address, ''), 1000))), 'B')
      || setweight(to_tsvector('english'::regconfig, mailroom_address_words(left(array_to_string(to_addresses, ' '), 20000))), 'C')
      || setweight(to_tsvector('english'::regconfig, left(coalesce(body_text, ''), 70000)), 'D')
$$;

CREATE FUNCTION mailroom_messages_search_fields() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.flags := mailroom_canonical_flags(NEW.flags);
  NEW.search_date := coalesce(NEW.internal_date, NEW.sent_at, NEW.created_at, now());
  -- A flag change (the most frequent update) does not recompute the vector.
  IF TG_OP = 'INSERT' OR OLD.search_vector IS NULL
     OR NEW.subject IS DISTINCT FROM OLD.subject
     OR NEW.from_address IS DISTINCT FROM OLD.from_address
     OR NEW.to_addresses IS DISTINCT FROM OLD.to_addresses
     OR NEW.body_text IS DISTINCT FROM OLD.body_text THEN
    NEW.search_vector := mailroom_search_vector(NEW.subject, NEW.from_address, NEW.to_addresses, NEW.body_text);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER messages_search_fields
  BEFORE INSERT OR UPDATE OF flags, subject, from_address, to_addresses, body_text, internal_date, sent_at
  ON messages FOR EACH ROW EXECUTE FUNCTION mailroom_messages_search_fields();

-- Matching: the GIN index finds the rows of a text query.
CREATE INDEX messages_search_vector_idx ON messages USING gin (search_vector);
-- Newest first for one user, and the cursor's (date, id) position: an index scan in order.
CREATE INDEX messages_user_search_date_idx ON messages (user_id, search_date DESC, id DESC);
-- What the backfill still has to index, in the order it walks (and whether one user's mail is
-- all indexed yet): empty once the backfill is done, so checking it costs nothing.
CREATE INDEX messages_search_pending_idx ON messages (user_id, id) WHERE search_vector IS NULL;
