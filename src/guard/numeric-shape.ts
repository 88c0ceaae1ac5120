/**
 * The text with its numeric literals replaced by 0, so that statements differing only in numbers
 * (the same query with other ids, as ORMs and pgbench's simple protocol send them) share one
 * analysis instead of one parse each.
 *
 * A digit run is replaced only where no name can continue through it: not after a letter, digit,
 * `_`, `$`, `-`, a backslash (escapes in E'' and U&'' strings) or any non-ASCII character, except
 * a `-` that itself follows none of those (a negative number: `abalance + -1234`). Every
 * name the guard could allow (a tenant or shared schema, a system schema, a GUC) starts with a
 * letter or `_` and is made of [A-Za-z0-9_-], so each of its digits follows one of those characters
 * and survives: a name in the shaped text that the guard allows is spelled the same in the
 * original. Token boundaries do not move either (digits stay digits). So where the shaped text is
 * allowed without side effects, the original is too; the guard checks everything else on the
 * original text itself.
 *
 * That holds while every literal is spelled as it reads. UESCAPE makes any character an escape
 * (U&"pg_!0072ead_file" UESCAPE '!' is pg_read_file, and shaped it would be another name), and a
 * backslash escape in an E'' or U&'' string can spell UESCAPE or U& inside a DO or function body
 * (E'... UE\x53CAPE ...'): a text with either is left as it is.
 */
export function numericShape(sql: string): string {
  if (sql.includes('\\') || UESCAPE.test(sql)) return sql;
  let out: string[] | null = null;
  let last = 0;
  const n = sql.length;
  for (let i = 0; i < n; i++) {
    const c = sql.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    let end = i + 1;
    while (end < n && isDigit(sql.charCodeAt(end))) end++;
    if (i > 0 && blocksShaping(sql.charCodeAt(i - 1)) && !signedNumber(sql, i)) {
      i = end - 1;
      continue;
    }
    if (end - i === 1 && c === 48) {
      i = end - 1;
      continue; // already "0"
    }
    out ??= [];
    out.push(sql.slice(last, i), '0');
    last = end;
    i = end - 1;
  }
  if (out === null) return sql;
  out.push(sql.slice(last));
  return out.join('');
}

const UESCAPE = /uescape/i;

/**
 * A minus sign before the digits at `i` that is not itself inside a name (`abalance + -1234`,
 * `= -5`, `(-1)`): the character before the `-` is one no name the guard allows can hold
 * (space, operator, parenthesis, comma; never a letter, digit, `_`, `$`, `-` or backslash).
 */
function signedNumber(sql: string, i: number): boolean {
  return i >= 2 && sql.charCodeAt(i - 1) === 45 && !blocksShaping(sql.charCodeAt(i - 2));
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Characters after which a digit may belong to a name or an escape sequence. */
function blocksShaping(c: number): boolean {
  return (
    (c >= 65 && c <= 90) || // A-Z
    (c >= 97 && c <= 122) || // a-z
    isDigit(c) ||
    c === 95 || // _
    c === 36 || // $
    c === 45 || // -
    c === 92 || // backslash
    c >= 128
  );
}
