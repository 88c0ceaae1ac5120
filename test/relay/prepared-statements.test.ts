import { describe, expect, it } from 'vitest';
import { PreparedStatements } from '../../src/backend/prepared-statements.js';

/** Which of `candidates` are held (read through use(), which refreshes each held one in the order given). */
function held(statements: PreparedStatements, candidates: readonly string[]): string[] {
  return candidates.filter((n) => statements.use(n));
}

describe('PreparedStatements', () => {
  it('adds within the cap without evicting', () => {
    const s = new PreparedStatements(3);
    expect(s.add('a')).toEqual([]);
    expect(s.add('b')).toEqual([]);
    expect(s.add('c')).toEqual([]);
    expect(s.size).toBe(3);
  });

  it('evicts the least recently added past the cap', () => {
    const s = new PreparedStatements(3);
    for (const n of ['a', 'b', 'c']) s.add(n);
    expect(s.add('d')).toEqual(['a']);
    expect(s.size).toBe(3);
    expect(s.use('a')).toBe(false);
    expect(s.add('e')).toEqual(['b']);
  });

  it('counts use() as a use: the refreshed name outlives older ones', () => {
    const s = new PreparedStatements(3);
    for (const n of ['a', 'b', 'c']) s.add(n);
    expect(s.use('a')).toBe(true);
    expect(s.add('d')).toEqual(['b']);
    expect(s.add('e')).toEqual(['c']);
    expect(s.add('f')).toEqual(['a']);
  });

  it('answers false for a name it does not hold, without adding it', () => {
    const s = new PreparedStatements(3);
    expect(s.use('x')).toBe(false);
    expect(s.size).toBe(0);
  });

  it('re-adding a held name refreshes it and evicts nothing', () => {
    const s = new PreparedStatements(2);
    s.add('a');
    s.add('b');
    expect(s.add('a')).toEqual([]);
    expect(s.size).toBe(2);
    expect(s.add('c')).toEqual(['b']);
  });

  it('never evicts the name being added', () => {
    const s = new PreparedStatements(1);
    s.add('a');
    expect(s.add('b')).toEqual(['a']);
    expect(s.add('b')).toEqual([]);
    expect(held(s, ['a', 'b'])).toEqual(['b']);
  });

  it('resize down evicts the oldest, in order, at the next add; resize up stops evicting', () => {
    const s = new PreparedStatements(4);
    for (const n of ['a', 'b', 'c', 'd']) s.add(n);
    s.use('a');
    s.resize(2);
    // Nothing is closed until a statement is added.
    expect(s.size).toBe(4);
    expect(s.add('e')).toEqual(['b', 'c', 'd']);
    expect(held(s, ['a', 'b', 'c', 'd', 'e'])).toEqual(['a', 'e']);
    s.resize(4);
    expect(s.add('f')).toEqual([]);
    expect(s.add('g')).toEqual([]);
    expect(s.add('h')).toEqual(['a']);
  });

  it('forget() and clear() drop names without evicting anything', () => {
    const s = new PreparedStatements(3);
    for (const n of ['a', 'b', 'c']) s.add(n);
    s.forget('b');
    s.forget('never');
    expect(held(s, ['a', 'b', 'c'])).toEqual(['a', 'c']);
    expect(s.add('d')).toEqual([]);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.use('a')).toBe(false);
  });
});
