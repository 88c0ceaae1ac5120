import { createHash } from 'node:crypto';

/** A stable, non-reversible identifier for a SQL text, for audit lines that must not carry the SQL. */
export function queryFingerprint(sql: string): string {
  return createHash('sha256').update(sql).digest('hex').slice(0, 16);
}
