import { describe, expect, it } from 'vitest';
import { splitQualifiedName } from '../../src/guard/index.js';

describe('reading a string as an object name, as Postgres does', () => {
  it.each([
    ['t', ['t']],
    ['tenant_globex.t', ['tenant_globex', 't']],
    ['TENANT_Globex.T', ['tenant_globex', 't']],
    ['"Tenant_X".t', ['Tenant_X', 't']],
    ['"a.b"."c""d"', ['a.b', 'c"d']],
    ['  s . t  ', ['s', 't']],
    ['db.s.t', ['db', 's', 't']],
    ['ÄBC.t', ['Äbc', 't']], // only ASCII letters fold in a UTF-8 database
    [`${'a'.repeat(70)}.t`, ['a'.repeat(63), 't']],
  ])('%s', (text, parts) => {
    expect(splitQualifiedName(text)).toEqual(parts);
  });

  it.each(['', 's.', '.t', 's..t', '"unterminated', 's t', 's.t extra'])('refuses %j', (text) => {
    expect(splitQualifiedName(text)).toBeNull();
  });
});
