import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

/**
 * The policy section through the live proxy: acme is trusted with dynamic SQL, every tenant is
 * denied TRUNCATE and pg_sleep and may not change statement_timeout; globex is also denied DROP.
 */
let proxy: TestProxy;
let acme: pg.Client;
let globex: pg.Client;

const DYNAMIC_INSERT = `DO $$ BEGIN EXECUTE 'INSERT INTO items (note) VALUES (''dynamic'')'; END $$`;

beforeAll(async () => {
  proxy = await startTestProxy({
    policy: {
      deniedStatements: ['TruncateStmt'],
      deniedFunctions: ['pg_sleep'],
      protectedSettings: ['statement_timeout'],
      tenants: {
        acme: { allow: ['dynamic_sql'] },
        globex: { deniedStatements: ['TruncateStmt', 'DropStmt'] },
        umbrella: { readOnlySchemas: ['public'] },
      },
    },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
  });
  acme = await proxy.connect('acme');
  globex = await proxy.connect('globex');
});
afterAll(async () => {
  await acme?.end();
  await globex?.end();
  await proxy?.close();
});

describe('policy through the proxy', () => {
  it('lifts dynamic SQL for the trusted tenant only, and it runs in that tenant', async () => {
    await acme.query(DYNAMIC_INSERT);
    const rows = await proxy.direct("SELECT count(*)::int AS n FROM tenant_acme.items WHERE note = 'dynamic'");
    expect(rows.rows[0]?.n).toBe(1);

    const refused = await errorOf(globex.query(DYNAMIC_INSERT));
    expect(refused?.code).toBe('42501');
    expect(refused?.message).toContain('EXECUTE');
    const none = await proxy.direct("SELECT count(*)::int AS n FROM tenant_globex.items WHERE note = 'dynamic'");
    expect(none.rows[0]?.n).toBe(0);
    expect((await globex.query('SELECT 1 AS ok')).rows[0]?.ok).toBe(1);
  });

  it('denies statements, functions and settings by policy, over both protocols', async () => {
    for (const client of [acme, globex]) {
      for (const [sql, message] of [
        ['TRUNCATE items', 'TruncateStmt statements are not allowed by policy'],
        ['SELECT pg_sleep(0)', 'function "pg_sleep" is not allowed by policy'],
        ['SET statement_timeout = 0', 'changing statement_timeout is not allowed by policy'],
      ] as const) {
        const simple = await errorOf(client.query(sql));
        expect(simple?.code, sql).toBe('42501');
        expect(simple?.message).toContain(message);
        const extended = await errorOf(client.query({ text: sql, values: [] }));
        expect(extended?.code, sql).toBe('42501');
      }
    }
    expect((await proxy.direct('SELECT count(*)::int AS n FROM tenant_acme.items')).rows[0]?.n).toBeGreaterThan(0);
    await acme.query('CREATE TABLE scratch (a int); DROP TABLE scratch');
    expect((await errorOf(globex.query('CREATE TABLE scratch (a int); DROP TABLE scratch')))?.message).toContain('DropStmt');
  });

  it('keeps a read-only shared schema readable and refuses writes that name it', async () => {
    const umbrella = await proxy.connect('umbrella');
    try {
      expect((await umbrella.query('SELECT count(*)::int AS n FROM public.shared_plans')).rows[0]?.n).toBe(2);
      for (const sql of ["INSERT INTO public.shared_plans VALUES (9, 'stolen')", 'DELETE FROM public.shared_plans', 'ALTER TABLE public.shared_plans ADD COLUMN x int']) {
        const refused = await errorOf(umbrella.query(sql));
        expect(refused?.code, sql).toBe('42501');
        expect(refused?.message).toContain('schema "public" is read-only for this tenant');
      }
      await umbrella.query('INSERT INTO items (note) SELECT name FROM public.shared_plans');
    } finally {
      await umbrella.end();
    }
    expect((await proxy.direct('SELECT count(*)::int AS n FROM public.shared_plans')).rows[0]?.n).toBe(2);
    expect((await proxy.direct("SELECT count(*)::int AS n FROM tenant_umbrella.items WHERE note IN ('free', 'pro')")).rows[0]?.n).toBe(2);
  });

  it('counts policy refusals by reason code', async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.running.adminPort}/metrics`);
    const text = await res.text();
    for (const reason of ['denied_statement', 'denied_function', 'protected_setting']) {
      expect(text).toMatch(new RegExp(`pgfence_statements_rejected_total\\{tenant="acme",reason="${reason}"\\} [1-9]`));
    }
  });

  it('a reloaded policy applies to new connections', async () => {
    const next = configSchema.parse({ ...proxy.config, policy: { tenants: { globex: { allow: ['dynamic_sql'] } } } });
    const result = await proxy.running.reload(next);
    expect(result.applied.some((key) => key.startsWith('policy'))).toBe(true);
    const fresh = await proxy.connect('globex');
    const dynamicRows = async (): Promise<number> =>
      (await proxy.direct<{ n: number }>("SELECT count(*)::int AS n FROM tenant_globex.items WHERE note = 'dynamic'")).rows[0]?.n ?? -1;
    try {
      await fresh.query(DYNAMIC_INSERT);
      expect(await dynamicRows()).toBe(1);
      await fresh.query('TRUNCATE items');
      expect(await dynamicRows()).toBe(0);
    } finally {
      await fresh.end();
    }
    // The session that was already open keeps the policy it connected with.
    expect((await errorOf(globex.query(DYNAMIC_INSERT)))?.code).toBe('42501');
  });
});
