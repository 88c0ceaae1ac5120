import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { applyRoleRecipe, roleRecipe } from '../../src/tenancy/roles.js';
import { getPgUrl, withClient } from '../support/db.js';
import { backendGone, errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

/**
 * tenancy.roleTemplate against the real Postgres: the roles come from the recipe of `pgfence
 * roles` (applied through src/tenancy/roles.ts), and the database itself refuses what a tenant
 * role may not do. The backend user of the tests is a superuser, so every refusal seen here
 * comes from the tenant role the pin switched to. Roles are cluster-wide: a random prefix keeps
 * this file's roles apart from any other run, and they are dropped at the end.
 */

const run = promisify(execFile);
const PREFIX = `pgf${randomBytes(3).toString('hex')}`;
const ROLE_TEMPLATE = `${PREFIX}_{tenant}`;
const role = (tenant: string): string => `${PREFIX}_${tenant}`;
const TENANTS = ['acme', 'globex', 'umbrella'];

/** A test proxy with tenant roles, a read-only shared schema `ref`, and the recipe applied. */
async function startRoleProxy(overrides: Partial<ConfigInput> = {}): Promise<TestProxy> {
  const proxy = await startTestProxy({
    tenancy: { roleTemplate: ROLE_TEMPLATE, sharedSchemas: ['public', 'ref'], tenants: TENANTS.map((id) => ({ id })) },
    policy: { readOnlySchemas: ['ref'] },
    ...overrides,
  });
  await proxy.direct(`
    CREATE SCHEMA ref;
    CREATE TABLE ref.countries (code text PRIMARY KEY);
    INSERT INTO ref.countries VALUES ('fr'), ('jp');
    CREATE FUNCTION public.escalate() RETURNS text LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_catalog.set_config('role', 'none', false); RETURN 'escalated'; END $$;`);
  const poolUser = (await proxy.direct<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;
  const recipe = roleRecipe({ tenancy: proxy.config.tenancy, policy: proxy.config.policy, poolUser, tenantIds: TENANTS });
  await applyRoleRecipe({ query: (sql) => proxy.direct(sql) }, recipe);
  return proxy;
}

async function tripwires(proxy: TestProxy): Promise<number> {
  const metric = await proxy.running.metrics.registry.getSingleMetric('pgfence_tripwires_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

afterAll(async () => {
  await withClient(getPgUrl(), async (client) => {
    for (const tenant of TENANTS) await client.query(`DROP ROLE IF EXISTS "${role(tenant)}"`);
  });
});

describe('tenancy.roleTemplate in session mode', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startRoleProxy();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('a client runs as its tenant role, and the pin itself does not trip the tripwire', async () => {
    const client = await proxy.connect('acme');
    try {
      const r = await client.query(
        "SELECT current_user AS cu, session_user AS su, current_setting('is_superuser') AS sup, current_setting('app.current_tenant_id') AS guc",
      );
      expect(r.rows[0]).toEqual({ cu: role('acme'), su: 'postgres', sup: 'off', guc: 'acme' });
      // Its own schema and the shared data work as before.
      expect((await client.query('SELECT secret FROM secrets')).rows).toEqual([{ secret: 'acme-secret' }]);
      await client.query("INSERT INTO items (note) VALUES ('by role')");
      await client.query("INSERT INTO shared_plans VALUES (3, 'team')");
      expect((await client.query('SELECT code FROM countries ORDER BY code')).rows).toEqual([{ code: 'fr' }, { code: 'jp' }]);
      await client.query('CREATE TABLE own_table (x int)');
      const owner = await proxy.direct<{ owner: string }>("SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'tenant_acme' AND tablename = 'own_table'");
      expect(owner.rows[0]?.owner).toBe(role('acme'));
      expect(await tripwires(proxy)).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('the database refuses an unqualified write into a read-only shared schema, which the guard cannot see', async () => {
    const client = await proxy.connect('acme');
    try {
      const err = await errorOf(client.query("INSERT INTO countries VALUES ('de')"));
      expect(err.code).toBe('42501');
      expect(err.message).toBe('permission denied for table countries');
      // The session goes on, still as its role.
      expect((await client.query('SELECT current_user AS cu')).rows[0].cu).toBe(role('acme'));
    } finally {
      await client.end();
    }
    expect((await proxy.direct('SELECT code FROM ref.countries ORDER BY code')).rows).toEqual([{ code: 'fr' }, { code: 'jp' }]);
  });

  it("the role alone keeps a tenant out of another tenant's schema and read-only data (checked on a direct connection)", async () => {
    await withClient(proxy.directUrl, async (direct) => {
      await direct.query(`SET ROLE "${role('acme')}"`);
      const foreign = await errorOf(direct.query('SELECT * FROM tenant_globex.secrets'));
      expect([foreign.code, foreign.message]).toEqual(['42501', 'permission denied for schema tenant_globex']);
      const write = await errorOf(direct.query("INSERT INTO ref.countries VALUES ('de')"));
      expect([write.code, write.message]).toEqual(['42501', 'permission denied for table countries']);
      const create = await errorOf(direct.query('CREATE TABLE public.squat (x int)'));
      expect(create.code).toBe('42501');
      expect((await direct.query('SELECT count(*)::int AS n FROM tenant_acme.secrets')).rows[0].n).toBe(1);
      // Objects the pool user creates later in the tenant schema are the tenant's too (default privileges).
      await direct.query('RESET ROLE');
      await direct.query('CREATE TABLE tenant_acme.later (x int); CREATE TABLE ref.later (x int)');
      await direct.query(`SET ROLE "${role('acme')}"`);
      await direct.query('INSERT INTO tenant_acme.later VALUES (1)');
      expect((await direct.query('SELECT count(*)::int AS n FROM ref.later')).rows[0].n).toBe(0);
      expect((await errorOf(direct.query('INSERT INTO ref.later VALUES (1)'))).code).toBe('42501');
    });
  });

  it('a change of role the client caused (a function the guard cannot read) still trips the tripwire', async () => {
    const client = await proxy.connect('acme');
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const err = await errorOf(client.query('SELECT escalate()'));
    expect(err.code).toBe('42501');
    expect(err.message).toBe('pgfence: the server session changed role outside the tenant pin; connection closed');
    await client.end().catch(() => undefined);
    expect(await backendGone(proxy, pid)).toBe(true);
    expect(await tripwires(proxy)).toBe(1);
  });

  it('the guard still refuses SET ROLE and set_config of role from clients', async () => {
    const client = await proxy.connect('acme');
    try {
      for (const sql of [`SET ROLE "${role('globex')}"`, 'RESET ROLE', `SELECT set_config('role', '${role('globex')}', false)`]) {
        const err = await errorOf(client.query(sql));
        expect(err.code, sql).toBe('42501');
        expect(err.message, sql).toMatch(/^pgfence: /);
      }
      expect((await client.query('SELECT current_user AS cu')).rows[0].cu).toBe(role('acme'));
    } finally {
      await client.end();
    }
  });

  it("the README's RLS recipe holds through the tenant role, though the backend user is a superuser", async () => {
    await proxy.direct(`
      CREATE TABLE public.orders (id serial PRIMARY KEY, tenant_id text NOT NULL, item text NOT NULL);
      INSERT INTO public.orders (tenant_id, item) VALUES ('acme', 'anvil'), ('globex', 'globe');
      ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;
      ALTER TABLE public.orders FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON public.orders USING (tenant_id = current_setting('app.current_tenant_id'));`);
    const client = await proxy.connect('acme');
    try {
      expect((await client.query('SELECT tenant_id, item FROM orders')).rows).toEqual([{ tenant_id: 'acme', item: 'anvil' }]);
      await client.query("INSERT INTO orders (tenant_id, item) VALUES ('acme', 'rocket')");
      const foreign = await errorOf(client.query("INSERT INTO orders (tenant_id, item) VALUES ('globex', 'planted')"));
      expect([foreign.code, foreign.message]).toEqual(['42501', 'new row violates row-level security policy for table "orders"']);
      expect((await client.query("UPDATE orders SET item = 'taken' WHERE tenant_id = 'globex'")).rowCount).toBe(0);
    } finally {
      await client.end();
    }
    const all = await proxy.direct('SELECT tenant_id, item FROM public.orders ORDER BY id');
    expect(all.rows).toEqual([
      { tenant_id: 'acme', item: 'anvil' },
      { tenant_id: 'globex', item: 'globe' },
      { tenant_id: 'acme', item: 'rocket' },
    ]);
  });

  it('a tenant without a role is refused at connect, loudly', async () => {
    await proxy.direct(`DROP OWNED BY "${role('umbrella')}"; DROP ROLE "${role('umbrella')}"`);
    const err = await errorOf(proxy.connect('umbrella'));
    expect(err.code).toBe('28000');
    expect(err.message).toBe(`pgfence: the database role of tenant "umbrella" cannot be used: role "${role('umbrella')}" does not exist`);
  });
});

describe('tenancy.roleTemplate across backend reuse', () => {
  it('session mode: the next client of another tenant on the same backend gets its own role', async () => {
    const proxy = await startRoleProxy({ pool: { size: 1, acquireTimeoutMs: 5_000 } });
    try {
      const seen: Array<{ pid: number; cu: string }> = [];
      for (const tenant of ['acme', 'globex', 'acme']) {
        const client = await proxy.connect(tenant);
        seen.push((await client.query('SELECT pg_backend_pid() AS pid, current_user AS cu')).rows[0]);
        await client.end();
      }
      expect(seen.map((s) => s.cu)).toEqual([role('acme'), role('globex'), role('acme')]);
      expect(new Set(seen.map((s) => s.pid)).size).toBe(1);
      expect(await tripwires(proxy)).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  for (const reset of ['auto', 'always'] as const) {
    it(`transaction mode, pool.reset ${reset}: one backend re-pinned with the right role as tenants alternate`, async () => {
      const proxy = await startRoleProxy({ pool: { mode: 'transaction', reset, size: 1, acquireTimeoutMs: 5_000 } });
      try {
        const acme = await proxy.connect('acme');
        const globex = await proxy.connect('globex');
        try {
          const ask = async (client: pg.Client): Promise<{ pid: number; cu: string; guc: string }> =>
            (await client.query("SELECT pg_backend_pid() AS pid, current_user AS cu, current_setting('app.current_tenant_id') AS guc")).rows[0];
          const order: Array<[string, pg.Client]> = [['acme', acme], ['acme', acme], ['globex', globex], ['acme', acme], ['globex', globex], ['globex', globex]];
          const seen = [];
          for (const [tenant, client] of order) seen.push({ tenant, ...(await ask(client)) });
          for (const s of seen) expect([s.cu, s.guc], s.tenant).toEqual([role(s.tenant), s.tenant]);
          expect(new Set(seen.map((s) => s.pid)).size).toBe(1);
          // Inside a transaction the role holds too, and the read-only schema stays read-only.
          await globex.query('BEGIN');
          expect((await globex.query('SELECT current_user AS cu')).rows[0].cu).toBe(role('globex'));
          expect((await errorOf(globex.query("INSERT INTO countries VALUES ('de')"))).code).toBe('42501');
          await globex.query('ROLLBACK');
          expect((await acme.query('SELECT current_user AS cu')).rows[0].cu).toBe(role('acme'));
          expect(await tripwires(proxy)).toBe(0);
        } finally {
          await acme.end();
          await globex.end();
        }
      } finally {
        await proxy.close();
      }
    });
  }
});

describe('pgfence roles', () => {
  let proxy: TestProxy;
  let dir: string;
  let file: string;
  const cliRole = (tenant: string): string => `${PREFIX}c_${tenant}`;

  beforeAll(async () => {
    proxy = await startTestProxy();
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-roles-'));
    file = path.join(dir, 'pgfence.yaml');
    await writeFile(
      file,
      `backend: { url: "${proxy.directUrl}" }
jwt: { secret: "${'s'.repeat(40)}" }
tenancy:
  roleTemplate: "${PREFIX}c_{tenant}"
  tenants: [{ id: acme }, { id: globex }, { id: hooli }]
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await proxy?.close();
    await withClient(getPgUrl(), async (client) => {
      for (const tenant of ['acme', 'globex', 'hooli']) await client.query(`DROP ROLE IF EXISTS "${cliRole(tenant)}"`);
    });
  });

  const cli = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'roles', '--config', file, ...args]).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('prints a recipe that creates the roles, which runs as it is', async () => {
    const { code, stdout } = await cli('--tenant', 'acme', '--tenant', 'globex');
    expect(code).toBe(0);
    expect(stdout).toContain(`CREATE ROLE "${cliRole('acme')}" NOLOGIN`);
    expect(stdout).toContain(`GRANT "${cliRole('globex')}" TO "postgres";`);
    expect(stdout).not.toContain('hooli');
    // It is a script: run it (twice) as one simple query, the way psql -f would.
    await proxy.direct(stdout);
    await proxy.direct(stdout);
    const roles = await proxy.direct<{ rolname: string; rolcanlogin: boolean }>(
      'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
      [[cliRole('acme'), cliRole('globex')]],
    );
    expect(roles.rows).toEqual([
      { rolname: cliRole('acme'), rolcanlogin: false },
      { rolname: cliRole('globex'), rolcanlogin: false },
    ]);
  });

  it('--apply runs it on the configured backend, idempotently', async () => {
    for (let i = 0; i < 2; i++) {
      const { code, stdout } = await cli('--apply', '--tenant', 'acme', '--tenant', 'globex');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^pgfence: applied \d+ statements for 2 tenant\(s\) as "postgres"/);
    }
    const r = await proxy.direct<{ member: boolean; usage: boolean; foreign: boolean }>(
      `SELECT pg_has_role('postgres', $1, 'MEMBER') AS member,
              has_schema_privilege($1, 'tenant_acme', 'USAGE, CREATE') AS usage,
              has_schema_privilege($1, 'tenant_globex', 'USAGE') AS foreign`,
      [cliRole('acme')],
    );
    expect(r.rows[0]).toEqual({ member: true, usage: true, foreign: false });
  });

  it('covers the whole static list by default, and fails as a whole when a schema is missing', async () => {
    const { code, stderr } = await cli('--apply');
    expect(code).toBe(1);
    expect(stderr).toContain('schema "tenant_hooli" does not exist');
    expect(stderr).toContain('nothing was applied');
    const hooli = await proxy.direct('SELECT 1 FROM pg_roles WHERE rolname = $1', [cliRole('hooli')]);
    expect(hooli.rowCount).toBe(0);
  });

  it('refuses a tenant the static list does not know', async () => {
    const { code, stderr } = await cli('--tenant', 'nope');
    expect(code).toBe(2);
    expect(stderr).toBe('pgfence: not in tenancy.tenants: nope\n');
  });
});
