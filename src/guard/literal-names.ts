/**
 * Reading a string the way Postgres reads it as an object name (regclass input, nextval('s'),
 * has_table_privilege): SplitIdentifierString semantics. Dots separate parts, double quotes keep
 * case and dots ("" is a quote), unquoted parts are folded to lower case (ASCII only, as for a
 * UTF-8 database), every part is truncated to 63 bytes.
 */

const NAME_MAX_BYTES = 63;

/** scanner_isspace(): the only whitespace Postgres skips around names. */
export const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/** Unquoted names are folded to lower case, ASCII letters only (as for a UTF-8 database). */
export const foldAscii = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/** A name cut to 63 bytes (NAMEDATALEN - 1) at a character boundary, as Postgres truncates identifiers. */
export function truncate(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= NAME_MAX_BYTES) return name;
  let end = NAME_MAX_BYTES;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--; // never split a character
  return bytes.toString('utf8', 0, end);
}

/** `[schema.]name` as parts, or null where Postgres would answer "invalid name syntax". */
export function splitQualifiedName(text: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  const n = text.length;
  while (isSpace(text[i])) i++;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        part += text[i];
        i++;
      }
      i++;
    } else {
      const start = i;
      while (i < n && text[i] !== '.' && !isSpace(text[i])) i++;
      if (i === start) return null;
      part = foldAscii(text.slice(start, i));
    }
    parts.push(truncate(part));
    while (isSpace(text[i])) i++;
    if (i >= n) return parts;
    if (text[i] !== '.') return null;
    i++;
    while (isSpace(text[i])) i++;
  }
}

/**
 * `[schema.]name(argtype, ...)` (regprocedure, regoperator): the name's parts and the argument
 * type texts, or null when the text has no such shape.
 */
export function splitSignature(text: string): { name: string[]; argTypes: string[] } | null {
  const open = indexOutsideQuotes(text, '(', 0);
  if (open < 0) {
    const name = splitQualifiedName(text);
    return name === null ? null : { name, argTypes: [] };
  }
  const close = text.lastIndexOf(')');
  if (close < open || text.slice(close + 1).trim() !== '') return null;
  const name = splitQualifiedName(text.slice(0, open));
  if (name === null) return null;
  return { name, argTypes: splitTopLevel(text.slice(open + 1, close)) };
}

/** The elements of a one-dimensional array literal of plain names, or null for anything fancier. */
export function arrayElements(text: string): string[] | null {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) return null;
  const inner = t.slice(1, -1);
  if (/["\\{}]/.test(inner)) return null;
  if (inner.trim() === '') return [];
  return inner.split(',').map((e) => e.trim()).filter((e) => e.toUpperCase() !== 'NULL');
}

function indexOutsideQuotes(text: string, ch: string, from: number): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text[i] === ch) return i;
  }
  return -1;
}

/** Splits on commas outside parentheses and double quotes. */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (quoted) continue;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out.filter((s) => s !== '');
}
