import { foldAscii, isSpace, truncate } from './literal-names.js';

/**
 * search_path values as Postgres reads them (SplitIdentifierString with a comma): names separated
 * by commas, whitespace around each; a double-quoted name keeps its case and commas ("" is a
 * quote); an unquoted name runs to the next comma or whitespace and is folded to lower case; every
 * name is truncated to 63 bytes. An empty (or all-whitespace) value is the empty list.
 *
 * Returns the names in order (`"$user"` stays `$user`, an empty quoted name `""` stays ''), or null
 * where Postgres would refuse the value as invalid list syntax. Pure: the guard's verdict and the
 * relay's tripwire both read a search_path with it.
 */
export function searchPathSchemas(value: string): string[] | null {
  const names: string[] = [];
  const n = value.length;
  let i = 0;
  while (i < n && isSpace(value[i])) i++;
  if (i >= n) return names;
  for (;;) {
    let name = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null; // mismatched quotes
        if (value[i] === '"') {
          if (value[i + 1] !== '"') break;
          i++;
        }
        name += value[i];
        i++;
      }
      i++;
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !isSpace(value[i])) i++;
      if (i === start) return null; // an empty unquoted name
      name = foldAscii(value.slice(start, i));
    }
    names.push(truncate(name));
    while (i < n && isSpace(value[i])) i++;
    if (i >= n) return names;
    if (value[i] !== ',') return null;
    i++;
    while (i < n && isSpace(value[i])) i++;
  }
}

/**
 * A name as SET writes a string element into a list setting that quotes its elements (search_path
 * is one): quoted unless it is all lower-case letters, digits and `_` and does not start with a
 * digit. Postgres also quotes keywords; searchPathSchemas reads both spellings the same.
 */
export function quoteSearchPathName(name: string): string {
  return PLAIN_NAME.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

const PLAIN_NAME = /^[a-z_][a-z0-9_]*$/;
