/**
 * Splits a name the way Postgres reads a string as a qualified name (regclass input, nextval):
 * dots separate parts, double quotes keep case and dots, "" is a quote, unquoted parts are
 * folded to lower case. Returns null for text Postgres would not read as a name.
 */
export function splitQualifiedName(text: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = (): void => {
    while (i < n && /\s/.test(text[i] as string)) i++;
  };
  for (;;) {
    skipSpace();
    let part = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i];
        i++;
      }
    } else {
      const start = i;
      while (i < n && text[i] !== '.' && !/\s/.test(text[i] as string) && text[i] !== '(') i++;
      part = text.slice(start, i).toLowerCase();
      if (part === '') return null;
    }
    parts.push(part);
    skipSpace();
    if (i >= n || text[i] === '(') return parts; // regprocedure/regoperator carry an argument list
    if (text[i] !== '.') return null;
    i++;
  }
}
