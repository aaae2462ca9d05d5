// What PostgreSQL's errors mean for the caller. Pure: an error's SQLSTATE only.

/** PostgreSQL refused a value: SQLSTATE class 22 (data exception) or 54 (program limit, e.g. an index row too large). */
export function isPostgresDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}
