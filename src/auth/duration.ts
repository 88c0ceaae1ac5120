const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** '3600', '30s', '15m', '1h', '2d' → seconds (a positive whole number); anything else throws. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(text);
  if (match === null) {
    throw new Error(`"${text}" is not a duration; give seconds, or a whole number with s, m, h or d (30s, 15m, 1h, 2d)`);
  }
  const unit = (match[2] || 's') as keyof typeof UNIT_SECONDS;
  const seconds = Number(match[1]) * UNIT_SECONDS[unit];
  if (seconds === 0) throw new Error(`"${text}" is not a duration; it must be longer than 0`);
  if (!Number.isSafeInteger(seconds)) throw new Error(`"${text}" is too long a duration`);
  return seconds;
}
