import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

/**
 * Attacks from a client fenced into tenant acme, through pgfence, against a real Postgres whose
 * pool role could do all of them (it owns every schema). Each must fail, and after each the pin
 * must still hold.
 */
const ESCAPES: Array<[string, string]> = [
  ['qualified table', 'SELECT * FROM tenant_globex.secrets'],
  ['quoted schema', 'SELECT * FROM "tenant_globex"."secrets"'],
  ['unicode-escaped schema', 'SELECT * FROM U&"tenant\\005fglobex".secrets'],
  ['join', 'SELECT * FROM items i JOIN tenant_globex.items g ON true'],
  ['subquery in select list', 'SELECT (SELECT secret FROM tenant_globex.secrets LIMIT 1)'],
  ['subquery in where', 'SELECT * FROM items WHERE EXISTS (SELECT 1 FROM tenant_globex.secrets)'],
  ['CTE', 'WITH s AS (SELECT * FROM tenant_globex.secrets) SELECT * FROM s'],
  ['data-modifying CTE', 'WITH d AS (DELETE FROM tenant_globex.items RETURNING *) SELECT count(*) FROM d'],
  ['lateral', 'SELECT * FROM items, LATERAL (SELECT * FROM tenant_globex.items) x'],
  ['union', 'SELECT note FROM items UNION ALL SELECT secret FROM tenant_globex.secrets'],
  ['insert target', "INSERT INTO tenant_globex.items (note) VALUES ('planted')"],
  ['insert from select', 'INSERT INTO items (note) SELECT secret FROM tenant_globex.secrets'],
  ['update target', "UPDATE tenant_globex.items SET note = 'x'"],
  ['update from', 'UPDATE items SET note = s.secret FROM tenant_globex.secrets s'],
  ['delete using', 'DELETE FROM items USING tenant_globex.items g'],
  ['returning subquery', "INSERT INTO items (note) VALUES ('a') RETURNING (SELECT secret FROM tenant_globex.secrets LIMIT 1)"],
  ['three-part column', 'SELECT tenant_globex.secrets.secret FROM secrets'],
  ['foreign function', 'SELECT tenant_globex.whoami()'],
  ['foreign type cast', 'SELECT NULL::tenant_globex.items'],
  ['regclass literal', "SELECT 'tenant_globex.secrets'::regclass"],
  ['nextval on foreign sequence', "SELECT nextval('tenant_globex.counter')"],
  ['table_to_xml', "SELECT table_to_xml('tenant_globex.secrets', true, false, '')"],
  ['table_to_xml on a computed name', "SELECT table_to_xml(('tenant_glo' || 'bex.secrets')::regclass, true, false, '')"],
  ['query_to_xml', "SELECT query_to_xml('select * from tenant_globex.secrets', true, false, '')"],
  ['COPY table', 'COPY tenant_globex.secrets TO STDOUT'],
  ['COPY query', 'COPY (SELECT * FROM tenant_globex.secrets) TO STDOUT'],
  ['COPY to a file', "COPY items TO '/tmp/pgfence-leak.txt'"],
  ['COPY from a program', "COPY items FROM PROGRAM 'id'"],
  ['EXPLAIN ANALYZE', 'EXPLAIN ANALYZE SELECT * FROM tenant_globex.secrets'],
  ['PREPARE body', 'PREPARE steal AS SELECT * FROM tenant_globex.secrets'],
  ['CREATE VIEW over foreign table', 'CREATE VIEW peek AS SELECT * FROM tenant_globex.secrets'],
  ['CREATE TABLE AS', 'CREATE TABLE stolen AS SELECT * FROM tenant_globex.secrets'],
  ['move own table into foreign schema', 'ALTER TABLE items SET SCHEMA tenant_globex'],
  ['create table in foreign schema', 'CREATE TABLE tenant_globex.planted (x int)'],
  ['drop foreign table', 'DROP TABLE tenant_globex.secrets'],
  ['truncate foreign table', 'TRUNCATE tenant_globex.items'],
  ['lock foreign table', 'LOCK TABLE tenant_globex.items'],
  ['grant in foreign schema', 'GRANT SELECT ON ALL TABLES IN SCHEMA tenant_globex TO PUBLIC'],
  ['multi-statement, second bad', 'SELECT 1; SELECT * FROM tenant_globex.secrets'],
  ['SET search_path', 'SET search_path TO tenant_globex'],
  ['SET LOCAL search_path', 'BEGIN; SET LOCAL search_path = tenant_globex; SELECT * FROM secrets; COMMIT'],
  ['SET SESSION search_path', 'SET SESSION search_path = tenant_globex, public'],
  ['RESET search_path', 'RESET search_path'],
  ['RESET ALL followed by a statement', 'RESET ALL; SELECT * FROM secrets'],
  ['DISCARD ALL followed by a statement', "DISCARD ALL; SELECT current_setting('app.current_tenant_id')"],
  ['RESET ALL in a DO block', "DO $$ BEGIN RESET ALL; END $$"],
  ['search_path naming another tenant after a narrower one', "SET search_path = '', tenant_globex"],
  ['set_config in a subquery', "SELECT (SELECT set_config('search_path', 'tenant_globex', false))"],
  ['set_config with a computed name', "SELECT set_config('search' || '_path', 'tenant_globex', false)"],
  ['tenant GUC', "SET app.current_tenant_id = 'globex'"],
  ['tenant GUC via set_config', "SELECT set_config('app.current_tenant_id', 'globex', false)"],
  ['SET ROLE', 'SET ROLE pg_read_all_data'],
  ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION postgres'],
  ['function with SET search_path', "CREATE FUNCTION esc() RETURNS int LANGUAGE sql SET search_path = tenant_globex AS 'SELECT 1'"],
  ['SQL function body reading foreign data', "CREATE FUNCTION esc2() RETURNS text LANGUAGE sql AS 'SELECT secret FROM tenant_globex.secrets'"],
  ['DO block with dynamic EXECUTE', "DO $$ BEGIN EXECUTE 'SELECT * FROM tenant_' || 'globex.secrets'; END $$"],
  ['DO block with static foreign SQL', 'DO $$ BEGIN PERFORM * FROM tenant_globex.secrets; END $$'],
  ['other session temp schema', 'SELECT * FROM pg_temp_1.anything'],
  ['toast schema', 'SELECT * FROM pg_toast.pg_toast_2619'],
  ['cross-database name', 'SELECT * FROM otherdb.tenant_acme.items'],
  ['client_encoding switch', "SET client_encoding = 'SJIS'"],
  ['standard_conforming_strings off', 'SET standard_conforming_strings = off'],
  ['dblink', "SELECT dblink_exec('dbname=postgres', 'select 1')"],
  ['large objects', "SELECT lo_import('/etc/passwd')"],
  ['read a server file', "SELECT pg_read_file('/etc/passwd')"],
  ['ALTER SYSTEM', "ALTER SYSTEM SET search_path = 'tenant_globex'"],
  ['CREATE ROLE', 'CREATE ROLE intruder LOGIN SUPERUSER'],
  ['ALTER ROLE SET', 'ALTER ROLE CURRENT_USER SET search_path = tenant_globex'],
  ['CREATE SCHEMA', 'CREATE SCHEMA tenant_evil'],
  ['CREATE EXTENSION', 'CREATE EXTENSION dblink'],
  ['terminate other backends', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity'],
  ['does not parse', 'SELEC * FROM secrets'],
];

let proxy: TestProxy;
let client: pg.Client;

beforeAll(async () => {
  proxy = await startTestProxy();
  client = await proxy.connect('acme');
});
afterAll(async () => {
  await client?.end();
  await proxy?.close();
});

async function expectPinHolds(c: pg.Client): Promise<void> {
  await c.query('ROLLBACK').catch(() => undefined);
  const r = await c.query(
    "SELECT current_setting('search_path') AS path, current_setting('app.current_tenant_id') AS tenant, current_user AS who, (SELECT count(*)::int FROM secrets) AS own",
  );
  expect(r.rows[0]).toMatchObject({ path: '"tenant_acme", "public"', tenant: 'acme', own: 1 });
}

describe(`escape attempts from tenant acme (${ESCAPES.length})`, () => {
  it.each(ESCAPES)('%s is refused and the pin holds', async (_name, sql) => {
    const error = await client.query(sql).then(
      () => null,
      (e: pg.DatabaseError) => e,
    );
    expect(error, sql).not.toBeNull();
    expect(['42501', '42601', '0A000']).toContain(error?.code);
    await expectPinHolds(client);
  });

  it('the same attacks over the extended protocol are refused too', async () => {
    for (const [name, sql] of ESCAPES) {
      if (sql.includes(';')) continue; // multi-statement strings cannot be prepared
      const error = await client.query({ text: sql, queryMode: 'extended' } as pg.QueryConfig).then(
        () => null,
        (e: pg.DatabaseError) => e,
      );
      expect(error, name).not.toBeNull();
      expect(['42501', '42601', '0A000'], name).toContain(error?.code);
    }
    await expectPinHolds(client);
  });

  it("nothing of globex's changed, and nothing was planted", async () => {
    const r = await proxy.direct(`
      SELECT (SELECT count(*)::int FROM tenant_globex.items) AS items,
             (SELECT count(*)::int FROM tenant_globex.secrets) AS secrets,
             to_regclass('tenant_globex.planted') IS NULL AS not_planted,
             to_regclass('tenant_acme.items') IS NOT NULL AS items_stayed,
             (SELECT count(*)::int FROM pg_namespace WHERE nspname = 'tenant_evil') AS evil_schemas,
             (SELECT count(*)::int FROM pg_roles WHERE rolname = 'intruder') AS intruders`);
    expect(r.rows[0]).toEqual({ items: 2, secrets: 1, not_planted: true, items_stayed: true, evil_schemas: 0, intruders: 0 });
  });

  it('RESET ALL and DISCARD ALL reset the session and the pin stands again right after them', async () => {
    const c = await proxy.connect('acme');
    try {
      for (const reset of ['RESET ALL', 'DISCARD ALL', 'SET work_mem = 1234; RESET ALL']) {
        await c.query("SET work_mem = '1111kB'");
        await c.query(reset);
        await expectPinHolds(c);
        expect((await c.query("SELECT current_setting('work_mem') AS w")).rows[0].w).not.toBe('1111kB');
      }
      // Postgres refuses DISCARD ALL in the implicit transaction of a multi-statement text; the pin stands.
      const inBlock = await c.query('SELECT 1; DISCARD ALL').catch((e: pg.DatabaseError) => e);
      expect((inBlock as pg.DatabaseError).code).toBe('25001');
      await expectPinHolds(c);
      // Pipelined right behind the reset, before its answer: still pinned.
      const [, after] = await Promise.all([c.query('RESET ALL'), c.query("SELECT current_setting('search_path') AS path, current_setting('app.current_tenant_id') AS t")]);
      expect(after.rows[0]).toEqual({ path: '"tenant_acme", "public"', t: 'acme' });
      const extended = await c.query({ text: 'RESET ALL', queryMode: 'extended' } as pg.QueryConfig).catch((e: pg.DatabaseError) => e);
      expect((extended as pg.DatabaseError).code).toBe('0A000');
      await expectPinHolds(c);
    } finally {
      await c.end();
    }
  });

  it('a search_path narrower than the pin is allowed and reaches no other tenant', async () => {
    const c = await proxy.connect('acme');
    try {
      await c.query("SELECT pg_catalog.set_config('search_path', '', false)");
      const none = await c.query('SELECT * FROM secrets').catch((e: pg.DatabaseError) => e);
      expect((none as pg.DatabaseError).code).toBe('42P01');
      expect((await c.query('SELECT secret FROM tenant_acme.secrets')).rows).toEqual([{ secret: 'acme-secret' }]);
      await c.query('SET search_path = tenant_acme');
      expect((await c.query('SELECT secret FROM secrets')).rows).toEqual([{ secret: 'acme-secret' }]);
      const foreign = await c.query('SET search_path = tenant_globex').catch((e: pg.DatabaseError) => e);
      expect((foreign as pg.DatabaseError).code).toBe('42501');
      expect((await c.query('SELECT secret FROM secrets')).rows).toEqual([{ secret: 'acme-secret' }]);
    } finally {
      await c.end();
    }
  });

  it('ordinary work of the tenant still goes through', async () => {
    const c = await proxy.connect('acme');
    try {
      await c.query('BEGIN');
      await c.query("INSERT INTO items (note) VALUES ('legit') RETURNING id");
      await c.query('CREATE TEMP TABLE scratch AS SELECT * FROM items');
      await c.query("SELECT nextval('counter'), 'items'::regclass, tenant_acme.whoami(), to_regclass('public.shared_plans')");
      await c.query('SET LOCAL statement_timeout = 5000');
      await c.query('ROLLBACK');
      const r = await c.query('SELECT count(*)::int AS n FROM items');
      expect(r.rows[0].n).toBe(2);
    } finally {
      await c.end();
    }
  });
});
