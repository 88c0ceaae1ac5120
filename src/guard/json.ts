/** The parse tree as libpg-query returns it: plain JSON, nodes wrapped as `{ TypeName: {...} }`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = { [key: string]: Json };

export const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The body of a node wrapped as `{ [type]: body }`, or undefined. */
export function node(v: Json | undefined, type: string): Obj | undefined {
  if (!isObj(v)) return undefined;
  const body = v[type];
  return isObj(body) ? body : undefined;
}

/** The text of a String node (`{ String: { sval } }`; an empty sval is omitted by the serializer). */
export function stringNode(v: Json | undefined): string | undefined {
  const s = node(v, 'String');
  if (s === undefined) return undefined;
  return typeof s['sval'] === 'string' ? s['sval'] : '';
}

/** The names of an array (or List node) made only of String nodes, or undefined. */
export function stringList(v: Json | undefined): string[] | undefined {
  const items = Array.isArray(v) ? v : node(v, 'List')?.['items'];
  if (!Array.isArray(items)) return undefined;
  const names: string[] = [];
  for (const item of items) {
    const s = stringNode(item);
    if (s === undefined) return undefined;
    names.push(s);
  }
  return names;
}

/** The value of a string constant (`'text'`), or undefined. */
export function stringConst(v: Json | undefined): string | undefined {
  const sval = node(v, 'A_Const')?.['sval'];
  if (!isObj(sval)) return undefined;
  return typeof sval['sval'] === 'string' ? sval['sval'] : '';
}

/** A string constant seen through casts and `name => value` notation (`'s.t'::text`). */
export function literalOf(v: Json | undefined): string | undefined {
  const direct = stringConst(v);
  if (direct !== undefined) return direct;
  const inner = node(v, 'TypeCast')?.['arg'] ?? node(v, 'NamedArgExpr')?.['arg'];
  return inner === undefined ? undefined : literalOf(inner);
}

/** A non-string constant as SET would print it (`on`/`off`, digits), or undefined. */
export function scalarConst(v: Json | undefined): string | undefined {
  const c = node(v, 'A_Const');
  if (c === undefined) return undefined;
  if (isObj(c['ival'])) return String(c['ival']['ival'] ?? 0);
  if (isObj(c['fval'])) return String(c['fval']['fval'] ?? '0');
  if (isObj(c['boolval'])) return c['boolval']['boolval'] === true ? 'on' : 'off';
  return undefined;
}

export const arrayOf = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
