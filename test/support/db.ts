import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { withClient } from './pg-client.js';
import type { PgAuthUsers, PgProvider } from './provided.js';

export { urlAs, withClient } from './pg-client.js';
export type { PgAuthUsers, PgProvider } from './provided.js';

/** A superuser URL of the run's Postgres (database `postgres`). */
export function getPgUrl(): string {
  return inject('pgUrl');
}

export function getPgProvider(): PgProvider {
  return inject('pgProvider');
}

/** Roles per authentication method; md5 and trust exist only where the provider could set them up. */
export function getPgAuthUsers(): PgAuthUsers {
  return inject('pgAuthUsers');
}

export interface TestDatabase {
  /** The superuser URL, pointed at this database. */
  url: string;
  name: string;
  /** Idempotent; disconnects whoever is still connected. */
  drop(): Promise<void>;
}

/**
 * A fresh, uniquely named database, so test files can run in parallel without seeing each
 * other. `owner` hands it to another role (e.g. one of getPgAuthUsers()); `serverUrl` (a
 * superuser URL) puts it on another server than the run's.
 */
export async function createTestDatabase(prefix: string, opts: { owner?: string; serverUrl?: string } = {}): Promise<TestDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`test database prefix must be a short lower-case identifier, got "${prefix}"`);
  const serverUrl = opts.serverUrl ?? getPgUrl();
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(serverUrl, async (client) => {
    const owner = opts.owner === undefined ? '' : ` OWNER ${client.escapeIdentifier(opts.owner)}`;
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}${owner}`);
  });
  let dropped: Promise<void> | undefined;
  return {
    url: withDatabase(serverUrl, name),
    name,
    drop: () =>
      (dropped ??= withClient(serverUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      })),
  };
}

function withDatabase(url: string, database: string): string {
  const target = new URL(url);
  target.pathname = `/${encodeURIComponent(database)}`;
  return target.toString();
}
