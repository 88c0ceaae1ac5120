import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPgUrl, withClient } from '../support/db.js';
import type { TestProxy } from '../support/proxy.js';
import { cliEnv, itFailsWhen, POOL_MODES, runTool, startDriverProxy, toolVersion } from './support.js';

const dump = await toolVersion('pg_dump');
const restore = await toolVersion('pg_restore');
const server = await withClient(getPgUrl(), async (client) => {
  const r = await client.query<{ version: string; num: string }>("SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num");
  const row = r.rows[0] as { version: string; num: string };
  return { version: row.version, major: Math.floor(Number(row.num) / 10_000) };
});

/**
 * pg_dump refuses a server newer than itself ("aborting because of server version mismatch"), and
 * pg_restore reads only archives of its own version or older: both must be at least the server's.
 */
const cannotDump =
  dump === null || restore === null
    ? `pg_dump/pg_restore are not installed (the server is PostgreSQL ${server.version})`
    : dump.major < server.major || restore.major < server.major
      ? `pg_dump ${dump.version} / pg_restore ${restore.version} are older than the server, PostgreSQL ${server.version}, and refuse it (server version mismatch); postgresql-client-${server.major} is needed`
      : null;
if (cannotDump !== null) console.warn(`[pg-dump.test] skipping the pg_dump round trip: ${cannotDump}`);

/** pg_dump of one tenant's schema through pgfence, restored directly (not through pgfence) into a fresh database. */
describe.each(POOL_MODES)('pg_dump through pgfence (%s pooling)', (mode) => {
  let proxy: TestProxy;
  let dir: string;

  beforeAll(async () => {
    proxy = await startDriverProxy(mode);
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-dump-'));
  });
  afterAll(async () => {
    await proxy?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  // pg_dump opens its session with this (libpq's ALWAYS_SECURE_SEARCH_PATH_SQL), and the guard
  // refuses set_config of search_path today: the desired behaviour is that pg_dump can run.
  it("accepts pg_dump's first statement, SELECT pg_catalog.set_config('search_path', '', false)", async () => {
    const client = await proxy.connect('acme');
    try {
      const r = await client.query<{ set_config: string }>("SELECT pg_catalog.set_config('search_path', '', false)");
      expect(r.rows).toEqual([{ set_config: '' }]);
      // With an empty search_path every name is qualified, as pg_dump writes them; the fence holds.
      const own = await client.query<{ note: string }>('SELECT note FROM tenant_acme.items ORDER BY id');
      expect(own.rows.map((row) => row.note)).toEqual(['acme item 1', 'acme item 2']);
    } finally {
      await client.end();
    }
  });

  const roundTrip = cannotDump !== null ? it.skip : itFailsWhen(true);
  roundTrip(`pg_dump -n tenant_acme, then pg_restore into a fresh database${cannotDump === null ? '' : ` [skipped: ${cannotDump}]`}`, async () => {
    const archive = path.join(dir, `acme-${mode}.dump`);
    const dumped = await runTool('pg_dump', ['-n', 'tenant_acme', '-Fc', '-f', archive], await cliEnv(proxy, 'acme'), 120_000);
    expect(dumped.stderr).toBe('');
    expect(dumped.code).toBe(0);

    const name = `pgfence_restored_${randomBytes(4).toString('hex')}`;
    await proxy.direct(`CREATE DATABASE ${name}`);
    try {
      const target = new URL(getPgUrl());
      target.pathname = `/${name}`;
      const restored = await runTool('pg_restore', ['--no-owner', '--no-privileges', '-d', target.toString(), archive], process.env, 120_000);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      await withClient(target.toString(), async (client) => {
        const items = await client.query('SELECT id, owner, note FROM tenant_acme.items ORDER BY id');
        expect(items.rows).toEqual([
          { id: 1, owner: 'acme', note: 'acme item 1' },
          { id: 2, owner: 'acme', note: 'acme item 2' },
        ]);
        const secrets = await client.query('SELECT id, secret FROM tenant_acme.secrets');
        expect(secrets.rows).toEqual([{ id: 1, secret: 'acme-secret' }]);
        const fn = await client.query<{ who: string }>('SELECT tenant_acme.whoami() AS who');
        expect(fn.rows[0]?.who).toBe('acme');
        const others = await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1");
        expect(others.rows.map((row) => row.nspname)).toEqual(['tenant_acme']);
      });
    } finally {
      await proxy.direct(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
});
