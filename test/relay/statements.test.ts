import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import {
  bindStatementName,
  ClientStatements,
  closeStatementMessage,
  describedTarget,
  describeStatementMessage,
  parseMessageFor,
  renameBind,
} from '../../src/relay/statements.js';

const parse = (name: string, text: string, types: number[] = []): Buffer => serialize.parse({ name, text, types });

describe('ClientStatements', () => {
  it('names a statement pgfence_<40 hex> and keeps the Parse body after the name', () => {
    const statements = new ClientStatements('acme');
    const entry = statements.register('s1', parse('s1', 'SELECT $1::int', [23]));
    expect(entry.serverName).toMatch(/^pgfence_[0-9a-f]{40}$/);
    expect(parseMessageFor(entry.serverName, entry.body)).toEqual(parse(entry.serverName, 'SELECT $1::int', [23]));
    expect(statements.lookup('s1')).toEqual(entry);
  });

  it('gives the same server name for the same tenant and body, whatever the client calls it', () => {
    const a = new ClientStatements('acme').register('s1', parse('s1', 'SELECT 1'));
    const b = new ClientStatements('acme').register('other', parse('other', 'SELECT 1'));
    expect(b.serverName).toBe(a.serverName);
  });

  it('gives different server names across tenants, texts and parameter types', () => {
    const name = (tenant: string, text: string, types: number[] = []): string =>
      new ClientStatements(tenant).register('s', parse('s', text, types)).serverName;
    const base = name('acme', 'SELECT $1');
    expect(name('globex', 'SELECT $1')).not.toBe(base);
    expect(name('acme', 'SELECT $1 ')).not.toBe(base);
    expect(name('acme', 'SELECT $1', [23])).not.toBe(base);
    expect(name('acme', 'SELECT $1', [25])).not.toBe(name('acme', 'SELECT $1', [23]));
  });

  it('keeps its own copy of the body: the client\'s chunk may be reused', () => {
    const message = parse('s1', 'SELECT 1');
    const entry = new ClientStatements('acme').register('s1', message);
    message.fill(0);
    expect(parseMessageFor(entry.serverName, entry.body)).toEqual(parse(entry.serverName, 'SELECT 1'));
  });

  it('replaces a name registered again, and forgets one on request', () => {
    const statements = new ClientStatements('acme');
    const first = statements.register('s1', parse('s1', 'SELECT 1'));
    const second = statements.register('s1', parse('s1', 'SELECT 2'));
    expect(second.serverName).not.toBe(first.serverName);
    expect(statements.lookup('s1')).toEqual(second);
    statements.forget('s1');
    expect(statements.lookup('s1')).toBeUndefined();
  });
});

describe('statement messages', () => {
  it('builds Close and Describe of a statement as a client would', () => {
    expect(closeStatementMessage('pgfence_x')).toEqual(serialize.close({ type: 'S', name: 'pgfence_x' }));
    expect(closeStatementMessage('')).toEqual(serialize.close({ type: 'S', name: '' }));
    expect(describeStatementMessage('pgfence_x')).toEqual(serialize.describe({ type: 'S', name: 'pgfence_x' }));
  });

  it('reads the target of a Describe or Close', () => {
    expect(describedTarget(serialize.describe({ type: 'P', name: 'p1' }))).toEqual({ kind: 'P', name: 'p1' });
    expect(describedTarget(serialize.close({ type: 'S', name: 's1' }))).toEqual({ kind: 'S', name: 's1' });
    expect(describedTarget(serialize.describe({ type: 'S', name: '' }))).toEqual({ kind: 'S', name: '' });
  });

  it('reads the statement a Bind names', () => {
    expect(bindStatementName(serialize.bind({ portal: 'p', statement: 's1', values: ['1'] }))).toBe('s1');
    expect(bindStatementName(serialize.bind({}))).toBe('');
  });

  it('renames a Bind\'s statement keeping portal, formats, parameters and result formats intact', () => {
    const values = ['42', null, '', Buffer.from([0, 1, 2, 0xff]), 'héllo'];
    for (const binary of [false, true]) {
      const bind = serialize.bind({ portal: 'p1', statement: 's1', values, binary });
      for (const name of ['pgfence_0123456789abcdef0123456789abcdef01234567', '', 'x']) {
        const renamed = renameBind(bind, name);
        expect(renamed).toEqual(serialize.bind({ portal: 'p1', statement: name, values, binary }));
        expect(renamed.readInt32BE(1)).toBe(renamed.length - 1);
      }
    }
  });
});
