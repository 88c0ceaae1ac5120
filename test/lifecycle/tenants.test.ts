import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, pollUntil } from '../support/helpers.js';
import { type LifecycleProxy, type LifecycleSetup, setUpLifecycle } from './support.js';

/** Waits for a pino line of the proxy's log matching `match` (no sleeping: each chunk is looked at as it comes). */
function logWatcher(): { stream: PassThrough; next(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> } {
  const stream = new PassThrough();
  const seen: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const text of lines) {
      const line = JSON.parse(text) as Record<string, unknown>;
      seen.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  return {
    stream,
    next(match) {
      const found = seen.find(match);
      if (found !== undefined) {
        seen.splice(seen.indexOf(found), 1);
        return Promise.resolve(found);
      }
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

async function auditActions(setup: LifecycleSetup, tenant: string): Promise<string[]> {
  const r = await setup.direct<{ action: string; outcome: string }>('SELECT action, outcome FROM pgfence.audit WHERE tenant_id = $1 ORDER BY id', [tenant]);
  return r.rows.map((row) => `${row.action}:${row.outcome}`);
}

describe('pgfence init and pgfence tenant, on a real Postgres, as a least-privilege provisioner', () => {
  let setup: LifecycleSetup;
  let proxy: LifecycleProxy;
  const log = logWatcher();

  beforeAll(async () => {
    setup = await setUpLifecycle();
    await setup.migration('shared/0001_plans.sql', 'CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);');
    await setup.migration('0001_items.sql', 'CREATE TABLE items (id serial PRIMARY KEY, note text NOT NULL);\nINSERT INTO items (note) VALUES (current_setting(\'app.current_tenant_id\'));');
  });
  afterAll(async () => {
    await setup?.close();
  });

  it('init creates the control schema, and again changes nothing', async () => {
    const first = await setup.cli(['init', '--json']);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({ action: 'init', outcome: 'ok', data: { schema: 'pgfence', serviceRole: setup.serviceRole, provisioner: setup.provisioner } });
    const again = await setup.cli(['init', '--json']);
    expect([again.code, again.json['outcome']]).toEqual([0, 'unchanged']);
    const tables = await setup.direct<{ relname: string }>("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'pgfence' AND relkind = 'r' ORDER BY 1");
    expect(tables.rows.map((r) => r.relname)).toEqual(['audit', 'shared_migrations', 'tenants']);
    // The audit trail: a pino line on stderr and a row, for each run.
    expect(first.err).toContain('"action":"init"');
    const rows = await setup.direct<{ action: string; outcome: string; db_user: string }>("SELECT action, outcome, db_user FROM pgfence.audit WHERE action = 'init' ORDER BY id");
    expect(rows.rows).toEqual([
      { action: 'init', outcome: 'ok', db_user: setup.provisioner },
      { action: 'init', outcome: 'unchanged', db_user: setup.provisioner },
    ]);
  });

  it('create makes the schema, applies the shared chain and every migration, and registers the tenant active; again: unchanged', async () => {
    const created = await setup.cli(['create', 'acme', '--json']);
    expect(created.code, created.out + created.err).toBe(0);
    expect(created.json).toMatchObject({ outcome: 'ok', data: { schema: 'tenant_acme', applied: ['0001_items.sql'], sharedApplied: ['0001_plans.sql'] } });
    const again = await setup.cli(['create', 'acme', '--json']);
    expect([again.code, again.json['outcome']]).toEqual([0, 'unchanged']);
    const row = await setup.direct("SELECT status, schema_name, version FROM pgfence.tenants WHERE id = 'acme'");
    expect(row.rows).toEqual([{ status: 'active', schema_name: 'tenant_acme', version: '0001_items.sql' }]);
    const versions = await setup.direct('SELECT name FROM tenant_acme.pgfence_migrations');
    expect(versions.rows).toEqual([{ name: '0001_items.sql' }]);
    // Migrations ran with the tenant GUC and search_path of the tenant.
    expect((await setup.direct('SELECT note FROM tenant_acme.items')).rows).toEqual([{ note: 'acme' }]);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pgfence.shared_migrations")).rows).toEqual([{ n: 1 }]);
  });

  it('a create that fails leaves no tenant behind, and a second run (once fixed) finishes it', async () => {
    await setup.migration('0002_broken.sql', 'CREATE TABLE broken (id int REFERENCES nowhere(id));');
    const failed = await setup.cli(['create', 'hooli', '--json']);
    expect(failed.code).toBe(1);
    expect(String(failed.json['error'])).toMatch(/0002_broken\.sql: relation "nowhere" does not exist/);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pgfence.tenants WHERE id = 'hooli'")).rows).toEqual([{ n: 0 }]);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenant_hooli'")).rows).toEqual([{ n: 0 }]);
    await setup.migration('0002_broken.sql', 'CREATE TABLE broken (id int);');
    const fixed = await setup.cli(['create', 'hooli', '--json']);
    expect([fixed.code, fixed.json['outcome']]).toEqual([0, 'ok']);
    expect(await auditActions(setup, 'hooli')).toEqual(['create:failed', 'create:ok']);
  });

  it('the proxy serves an active tenant from the control schema, as the non-superuser service role', async () => {
    proxy = await setup.startProxy(log.stream);
    const client = await proxy.connect('acme');
    const r = await client.query('SELECT note FROM items');
    expect(r.rows).toEqual([{ note: 'acme' }]);
    const user = await client.query<{ current_user: string }>('SELECT current_user');
    expect(user.rows[0]?.current_user).toBe(setup.serviceRole);
    await client.end();
    const unknown = await errorOf(proxy.connect('nobody'));
    expect([unknown.code, unknown.message]).toEqual(['28000', 'pgfence: unknown tenant "nobody"']);
  });

  it('suspend ends live sessions on the running proxy and refuses new ones (28000); resume serves it again', async () => {
    const live = await proxy.connect('acme');
    await live.query('SELECT 1');
    const ended = new Promise<void>((resolve) => live.once('end', () => resolve()));
    const suspended = await setup.cli(['suspend', 'acme', '--json']);
    expect(suspended.code).toBe(0);
    expect(suspended.json).toMatchObject({ outcome: 'ok', data: { status: 'suspended', listeningProxies: 1 } });
    await ended;
    const refusedNow = await errorOf(proxy.connect('acme'));
    expect([refusedNow.code, refusedNow.message]).toEqual(['28000', 'pgfence: tenant "acme" is suspended']);
    // Idempotent: a second suspend changes nothing and says so.
    const again = await setup.cli(['suspend', 'acme', '--json']);
    expect([again.code, again.json['outcome']]).toEqual([0, 'unchanged']);

    const resumed = await setup.cli(['resume', 'acme', '--json']);
    expect([resumed.code, resumed.json['outcome']]).toEqual([0, 'ok']);
    const back = await proxy.connect('acme');
    expect((await back.query('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 1 }]);
    await back.end();
  });

  it('a forged notification (anyone may NOTIFY) does not end an active tenant\'s sessions: only the registry does', async () => {
    const live = await proxy.connect('acme');
    const checked = log.next((line) => line['msg'] === 'tenant still active: its sessions are kept' && line['tenant'] === 'acme');
    await setup.direct(`NOTIFY pgfence_events, '{"tenant":"acme","action":"suspend"}'`);
    await checked;
    expect((await live.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await live.end();
  });

  it('migrate: one tenant of ten fails, the nine others migrate, the report names it and the exit code says so', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    for (const id of ids) expect((await setup.cli(['create', id])).code).toBe(0);
    // t05 already has what 0003 creates: its CREATE TABLE fails there, and only there.
    await setup.direct('CREATE TABLE tenant_t05.extra (id int)');
    await setup.migration('0003_extra.sql', 'CREATE TABLE extra (id int PRIMARY KEY, label text);');
    const run = await setup.cli(['migrate', '--concurrency', '3', '--tenants', ids.join(','), '--json']);
    expect(run.code).toBe(1);
    const report = run.json as { tenants: Array<{ tenant: string; status: string; error?: string }>; counts: Record<string, number> };
    const failed = report.tenants.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.tenant)).toEqual(['t05']);
    expect(failed[0]?.error).toMatch(/^0003_extra\.sql: relation "extra" already exists \(SQLSTATE 42P07\)$/);
    expect(report.counts).toMatchObject({ migrated: 9, failed: 1 });
    const versions = await setup.direct<{ id: string; version: string }>(`SELECT id, version FROM pgfence.tenants WHERE id LIKE 't0%' ORDER BY id`);
    expect(versions.rows.filter((r) => r.version === '0003_extra.sql').map((r) => r.id)).toEqual(ids.filter((id) => id !== 't05'));
    expect((await setup.direct("SELECT count(*)::int AS n FROM tenant_t05.pgfence_migrations WHERE name = '0003_extra.sql'")).rows).toEqual([{ n: 0 }]);
    expect(await auditActions(setup, 't05')).toEqual(['create:ok', 'migrate:failed']);
    expect(await auditActions(setup, 't04')).toEqual(['create:ok', 'migrate:ok']);
    // The human table names it too.
    const table = await setup.cli(['migrate', '--tenants', 't05']);
    expect(table.code).toBe(1);
    expect(table.out).toMatch(/t05\s+default\s+failed\s+-\s+0003_extra\.sql: relation "extra" already exists/);
    expect(table.out).toContain('0 migrated, 0 current, 1 failed');
  });

  it('list shows status, placement, version (a tenant behind is marked) and size', async () => {
    const listed = await setup.cli(['list', '--json']);
    expect(listed.code).toBe(0);
    const tenants = listed.json['tenants'] as Array<{ id: string; status: string; version: string; behind: boolean; size_bytes: number }>;
    expect(listed.json['latest']).toBe('0003_extra.sql');
    expect(tenants.find((t) => t.id === 't05')).toMatchObject({ status: 'active', placement: 'default', version: '0002_broken.sql', behind: true });
    expect(tenants.find((t) => t.id === 't04')).toMatchObject({ version: '0003_extra.sql', behind: false });
    expect(tenants.find((t) => t.id === 't04')?.size_bytes).toBeGreaterThan(0);
    const text = await setup.cli(['list']);
    expect(text.out).toMatch(/^t05\s+active\s+default\s+tenant_t05\s+0002_broken\.sql \(behind\)/m);
  });

  it('a tenant created after a migration gets it', async () => {
    const created = await setup.cli(['create', 'latecomer', '--json']);
    expect(created.json).toMatchObject({ outcome: 'ok', data: { applied: ['0001_items.sql', '0002_broken.sql', '0003_extra.sql'] } });
    expect((await setup.direct("SELECT to_regclass('tenant_latecomer.extra') IS NOT NULL AS present")).rows).toEqual([{ present: true }]);
  });

  it('two migrate runs at once: the second refuses (exit 3), or with --wait waits for the first', async () => {
    await setup.migration('0004_more.sql', 'ALTER TABLE items ADD COLUMN more text;');
    // Hold the run lock the way a running migrate does.
    const holder = new pg.Client({ connectionString: setup.db.url, application_name: 'lock-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    let waiting: ReturnType<LifecycleSetup['cli']> | undefined;
    try {
      await holder.query("SELECT pg_advisory_lock(hashtextextended('pgfence.lifecycle:pgfence', 0))");
      const refusedRun = await setup.cli(['migrate', '--tenants', 'acme', '--json']);
      expect(refusedRun.code).toBe(3);
      expect(String(refusedRun.json['error'])).toContain('holds the lifecycle lock');
      waiting = setup.cli(['migrate', '--tenants', 'acme', '--wait', '--json']);
      // It is blocked on the lock, not finished: seen in pg_stat_activity, then released.
      await pollUntil('the second run waits on the lock', async () => {
        const r = await setup.direct<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'advisory' AND application_name = 'pgfence-lifecycle'");
        return (r.rows[0]?.n ?? 0) > 0 ? true : undefined;
      });
      expect((await setup.direct('SELECT version FROM pgfence.tenants WHERE id = $1', ['acme'])).rows).toEqual([{ version: '0001_items.sql' }]);
    } finally {
      await holder.end();
    }
    const done = await waiting;
    expect(done?.code).toBe(0);
    const acme = (done?.json['tenants'] as Array<{ tenant: string }>).find((t) => t.tenant === 'acme');
    expect(acme).toEqual({ tenant: 'acme', placement: 'default', status: 'migrated', applied: ['0002_broken.sql', '0003_extra.sql', '0004_more.sql'] });
  });

  it('--canary N migrates the first N tenants only, and --dry-run changes nothing', async () => {
    const dry = await setup.cli(['migrate', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const dryReport = dry.json as { tenants: Array<{ tenant: string; status: string; applied: string[] }> };
    expect(dryReport.tenants.find((t) => t.tenant === 't01')).toMatchObject({ status: 'migrated', applied: ['0004_more.sql'] });
    expect((await setup.direct("SELECT count(*)::int AS n FROM tenant_t01.pgfence_migrations WHERE name = '0004_more.sql'")).rows).toEqual([{ n: 0 }]);
    const canary = await setup.cli(['migrate', '--canary', '2', '--json']);
    const report = canary.json as { tenants: Array<{ tenant: string; status: string }> };
    const migrated = report.tenants.filter((t) => t.status === 'migrated').map((t) => t.tenant);
    // The first two by id: acme (already at 0004 from the run above) and hooli.
    expect(report.tenants.filter((t) => t.status !== 'skipped')).toEqual([
      { tenant: 'acme', placement: 'default', status: 'current', applied: [] },
      { tenant: 'hooli', placement: 'default', status: 'migrated', applied: ['0003_extra.sql', '0004_more.sql'] },
    ]);
    expect(migrated).toEqual(['hooli']);
    expect(report.tenants.filter((t) => t.status === 'skipped').length).toBe(report.tenants.length - 2);
  });

  it('drop refuses an active tenant, a missing or wrong --confirm; drops a suspended one; again: unchanged', async () => {
    const active = await setup.cli(['drop', 't09', '--confirm', 't09', '--json']);
    expect([active.code, active.json['error']]).toEqual([3, 'tenant "t09" is active: suspend it first (`pgfence tenant suspend t09`)']);
    expect((await setup.cli(['suspend', 't09'])).code).toBe(0);
    const noConfirm = await setup.cli(['drop', 't09', '--json']);
    expect([noConfirm.code, noConfirm.json['error']]).toEqual([3, 'drop needs --confirm t09 (the tenant id, repeated)']);
    const wrong = await setup.cli(['drop', 't09', '--confirm', 't08', '--json']);
    expect(wrong.code).toBe(3);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenant_t09'")).rows).toEqual([{ n: 1 }]);
    const dropped = await setup.cli(['drop', 't09', '--confirm', 't09', '--json']);
    expect([dropped.code, dropped.json['outcome']]).toEqual([0, 'ok']);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenant_t09'")).rows).toEqual([{ n: 0 }]);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pgfence.tenants WHERE id = 't09'")).rows).toEqual([{ n: 0 }]);
    const again = await setup.cli(['drop', 't09', '--confirm', 't09', '--json']);
    expect([again.code, again.json['outcome']]).toEqual([0, 'unchanged']);
    expect(await auditActions(setup, 't09')).toEqual(['create:ok', 'migrate:ok', 'drop:refused', 'suspend:ok', 'drop:refused', 'drop:refused', 'drop:ok', 'drop:unchanged']);
  });

  it('names the template would not produce are refused by every command, and so is a registry row edited to point elsewhere', async () => {
    for (const bad of ['bad name', '../etc', '1abc', 'a'.repeat(70), "x'; DROP SCHEMA public CASCADE; --"]) {
      for (const args of [['create', bad], ['suspend', bad], ['resume', bad], ['dump', bad], ['drop', bad, '--confirm', bad]]) {
        const r = await setup.cli([...args, '--json']);
        expect([args[0], r.code, String(r.json['error'])]).toEqual([args[0], 3, expect.stringMatching(/is not a valid tenant name/)]);
      }
    }
    const unknown = await setup.cli(['migrate', '--tenants', 'nobody', '--json']);
    expect([unknown.code, unknown.json['error']]).toEqual([3, 'unknown tenant(s): nobody']);
    // A row pointing at public (edited by hand): drop, dump and migrate refuse to touch it.
    await setup.cli(['suspend', 't08']);
    await setup.direct("UPDATE pgfence.tenants SET schema_name = 'public' WHERE id = 't08'");
    const drop = await setup.cli(['drop', 't08', '--confirm', 't08', '--json']);
    expect([drop.code, drop.json['error']]).toEqual([3, 'tenant "t08" is registered with the schema "public", but tenancy.schemaTemplate gives "tenant_t08": refusing to touch it']);
    const dump = await setup.cli(['dump', 't08', '--json']);
    expect(dump.code).toBe(3);
    const migrate = await setup.cli(['migrate', '--tenants', 't08', '--json']);
    expect(migrate.code).toBe(1);
    const t08 = (migrate.json['tenants'] as Array<{ tenant: string; status: string; error: string }>).find((t) => t.tenant === 't08');
    expect([t08?.status, t08?.error]).toEqual(['failed', expect.stringContaining('refusing to touch it')]);
    expect((await setup.direct("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'public'")).rows).toEqual([{ n: 1 }]);
    // A schema that exists but is not registered is not taken over without --adopt.
    await setup.direct('CREATE SCHEMA tenant_squatter');
    const squat = await setup.cli(['create', 'squatter', '--json']);
    expect([squat.code, squat.json['error']]).toEqual([3, 'the schema "tenant_squatter" exists but tenant "squatter" is not registered: pass --adopt to register that schema as the tenant\'s']);
  });
});

describe('tenant ids that would name a reserved, shared or control schema', () => {
  let setup: LifecycleSetup;
  beforeAll(async () => {
    setup = await setUpLifecycle({ schemaTemplate: '{tenant}' });
    expect((await setup.cli(['init'])).code).toBe(0);
  });
  afterAll(async () => {
    await setup?.close();
  });

  it('are refused', async () => {
    for (const id of ['public', 'pgfence', 'pg_catalog', 'pg_toast', 'information_schema']) {
      const r = await setup.cli(['create', id, '--json']);
      expect([id, r.code, String(r.json['error'])]).toEqual([id, 3, expect.stringContaining('reserved, shared or the control schema')]);
    }
    const ok = await setup.cli(['create', 'acme', '--json']);
    expect([ok.code, (ok.json['data'] as { schema: string }).schema]).toEqual([0, 'acme']);
  });
});
