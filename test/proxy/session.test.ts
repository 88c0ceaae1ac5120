import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendGone, errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { size: 2, acquireTimeoutMs: 5_000 } });
});
afterAll(async () => {
  await proxy?.close();
});


describe('a tenant-pinned session', () => {
  it('sees its own rows through the pinned search_path and tenant GUC', async () => {
    const client = await proxy.connect('acme');
    try {
      const items = await client.query('SELECT owner, note FROM items ORDER BY id');
      expect(items.rows).toEqual([
        { owner: 'acme', note: 'acme item 1' },
        { owner: 'acme', note: 'acme item 2' },
      ]);
      const pin = await client.query(
        "SELECT current_setting('search_path') AS path, current_setting('app.current_tenant_id') AS tenant, whoami() AS who",
      );
      expect(pin.rows[0]).toEqual({ path: '"tenant_acme", "public"', tenant: 'acme', who: 'acme' });
      const shared = await client.query('SELECT name FROM shared_plans ORDER BY id');
      expect(shared.rows.map((r) => r.name)).toEqual(['free', 'pro']);
    } finally {
      await client.end();
    }
  });

  it("refuses another tenant's schema with 42501 and the session goes on, still pinned", async () => {
    const client = await proxy.connect('acme');
    try {
      const err = await errorOf(client.query('SELECT * FROM tenant_globex.secrets'));
      expect(err.code).toBe('42501');
      expect(err.message).toContain('tenant_globex');
      const after = await client.query("SELECT current_setting('search_path') AS path, (SELECT count(*) FROM secrets)::int AS n");
      expect(after.rows[0]).toEqual({ path: '"tenant_acme", "public"', n: 1 });
    } finally {
      await client.end();
    }
  });

  it('a rejection inside a transaction aborts it, exactly as a server error would', async () => {
    const client = await proxy.connect('acme');
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO items (note) VALUES ('rolled back')");
      const err = await errorOf(client.query('SELECT * FROM tenant_globex.items'));
      expect(err.code).toBe('42501');
      const aborted = await errorOf(client.query('SELECT 1'));
      expect(aborted.code).toBe('25P02');
      await client.query('ROLLBACK');
      const left = await client.query("SELECT count(*)::int AS n FROM items WHERE note = 'rolled back'");
      expect(left.rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('rejects a Parse in the extended protocol and recovers at Sync', async () => {
    const client = await proxy.connect('globex');
    try {
      const err = await errorOf(client.query({ text: 'SELECT secret FROM tenant_acme.secrets WHERE id = $1', values: [1] }));
      expect(err.code).toBe('42501');
      const ok = await client.query({ text: 'SELECT secret FROM secrets WHERE id = $1', values: [1] });
      expect(ok.rows).toEqual([{ secret: 'globex-secret' }]);
      const named = await client.query({ name: 'own', text: 'SELECT count(*)::int AS n FROM items WHERE id > $1', values: [0] });
      expect(named.rows[0].n).toBe(2);
      const again = await client.query({ name: 'own', text: 'SELECT count(*)::int AS n FROM items WHERE id > $1', values: [1] });
      expect(again.rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('refuses to move the pin: SET search_path, set_config and SET ROLE', async () => {
    const client = await proxy.connect('acme');
    try {
      for (const sql of [
        'SET search_path TO tenant_globex',
        "SELECT set_config('search_path', 'tenant_globex', false)",
        "SET app.current_tenant_id = 'globex'",
        'SET ROLE postgres',
        'RESET ALL; SELECT 1',
      ]) {
        const err = await errorOf(client.query(sql));
        expect(err.code, sql).toBe('42501');
      }
      const pin = await client.query("SELECT current_setting('search_path') AS path, current_setting('app.current_tenant_id') AS t");
      expect(pin.rows[0]).toEqual({ path: '"tenant_acme", "public"', t: 'acme' });
    } finally {
      await client.end();
    }
  });

  it('shows an empty application_name to a client that names none, as Postgres does', async () => {
    const client = await proxy.connect('acme');
    try {
      const r = await client.query("SELECT current_setting('application_name') AS app");
      expect(r.rows[0].app).toBe('');
    } finally {
      await client.end();
    }
  });

  it('forwards startup settings such as application_name and TimeZone to the backend session', async () => {
    const client = await proxy.connect('acme', { application_name: 'billing-worker', options: '-c TimeZone=Asia/Tokyo' });
    try {
      const r = await client.query("SELECT current_setting('application_name') AS app, current_setting('TimeZone') AS tz");
      expect(r.rows[0]).toEqual({ app: 'billing-worker', tz: 'Asia/Tokyo' });
    } finally {
      await client.end();
    }
  });

  it("greets each client with its own settings, never those of the client the backend served before", async () => {
    const greeting = async (extra: Record<string, string>): Promise<Map<string, string>> => {
      const seen = new Map<string, string>();
      const client = new pg.Client({ ...(await proxy.clientConfig('acme')), ...extra });
      client.on('error', () => undefined);
      client.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => seen.set(m.parameterName, m.parameterValue));
      await client.connect();
      await client.end();
      return seen;
    };
    // The pool has two backends: enough rounds that both serve each kind of client.
    for (let round = 0; round < 3; round += 1) {
      const tokyo = await greeting({ options: '-c TimeZone=Asia/Tokyo', application_name: 'tokyo' });
      expect(tokyo.get('TimeZone')).toBe('Asia/Tokyo');
      expect(tokyo.get('application_name')).toBe('tokyo');
      const plain = await greeting({ application_name: 'plain' });
      expect(plain.get('TimeZone')).not.toBe('Asia/Tokyo');
      expect(plain.get('application_name')).toBe('plain');
      expect(plain.get('server_version')).toBe(tokyo.get('server_version'));
    }
  });

  it('refuses a search_path smuggled in the startup options', async () => {
    const err = await errorOf(proxy.connect('acme', { options: '-c search_path=tenant_globex' }));
    expect(err.code).toBe('42501');
  });
});

describe('the tripwire behind the guard', () => {
  it('closes the session when a function the tenant may call moves search_path anyway', async () => {
    await proxy.direct(
      "CREATE FUNCTION tenant_acme.sneaky() RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_catalog.set_config('search_path', 'tenant_globex', false); RETURN 'moved'; END $$",
    );
    const client = await proxy.connect('acme');
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const err = await errorOf(client.query('SELECT sneaky()'));
    expect(err.code).toBe('42501');
    expect(err.message).toContain('search_path');
    await client.end().catch(() => undefined);
    // The backend that left the pin is closed, never reused.
    expect(await backendGone(proxy, pid)).toBe(true);
  });

  it('closes the session when a function switches the role', async () => {
    await proxy.direct(
      "CREATE FUNCTION tenant_acme.become() RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_catalog.set_config('role', 'pg_read_all_data', false); RETURN 'became'; END $$",
    );
    const client = await proxy.connect('acme');
    const err = await errorOf(client.query('SELECT become()'));
    expect(err.code).toBe('42501');
    expect(err.message).toContain('role');
    await client.end().catch(() => undefined);
  });
});

describe('state reset between clients', () => {
  it('the next client of another tenant on the same backend sees nothing the first one left', async () => {
    const single = await startTestProxy({ pool: { size: 1, acquireTimeoutMs: 5_000 } });
    try {
      const first = await single.connect('acme');
      const pid1 = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await first.query('CREATE TEMP TABLE leftover (x int)');
      await first.query("PREPARE leftover_stmt AS SELECT 'acme'");
      await first.query('SET statement_timeout = 12345');
      await first.query('LISTEN acme_channel');
      await first.end();

      const second = await single.connect('globex');
      try {
        const r = await second.query(`
          SELECT pg_backend_pid() AS pid,
                 (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
                 to_regclass('pg_temp.leftover') IS NULL AS no_temp,
                 current_setting('statement_timeout') AS timeout,
                 (SELECT count(*)::int FROM pg_listening_channels()) AS listening,
                 current_setting('search_path') AS path,
                 current_setting('app.current_tenant_id') AS tenant`);
        expect(r.rows[0]).toEqual({
          pid: pid1,
          prepared: 0,
          no_temp: true,
          timeout: '0',
          listening: 0,
          path: '"tenant_globex", "public"',
          tenant: 'globex',
        });
      } finally {
        await second.end();
      }
    } finally {
      await single.close();
    }
  });
});
