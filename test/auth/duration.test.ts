import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/auth/index.js';

describe('parseDuration', () => {
  it.each([
    ['3600', 3600],
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['2d', 172_800],
    ['1', 1],
    [' 5m ', 300],
    ['10 s', 10],
    ['0090', 90],
    ['365d', 31_536_000],
  ])('%j is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', ' ', 'h', 'abc', '1.5h', '-1h', '+1h', '1w', '1H', '10 minutes', '1h30m', 'Infinity', '0x10', '1e3', '１h'])(
    '%j is refused with an Error that says what a duration looks like',
    (text) => {
      expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration; give seconds, or a whole number with s, m, h or d (30s, 15m, 1h, 2d)`);
    },
  );

  it('refuses zero and lengths beyond a safe integer', () => {
    expect(() => parseDuration('0')).toThrow('"0" is not a duration; it must be longer than 0');
    expect(() => parseDuration('0h')).toThrow(/longer than 0/);
    expect(() => parseDuration('99999999999999999999d')).toThrow('"99999999999999999999d" is too long a duration');
  });
});
