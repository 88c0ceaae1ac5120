import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capStatementTimeout, timeSettingMs } from '../../src/frontend/startup-params.js';
import { errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

describe('statement_timeout values', () => {
  it('reads times as Postgres does', () => {
    expect(timeSettingMs('250')).toBe(250);
    expect(timeSettingMs('1.5s')).toBe(1500);
    expect(timeSettingMs('2 min')).toBe(120_000);
    expect(timeSettingMs('500us')).toBe(0.5);
    expect(timeSettingMs('1h')).toBe(3_600_000);
    expect(timeSettingMs('soon')).toBeNull();
  });

  it('keeps a shorter client value and caps the rest', () => {
    const capped = (asked: string | undefined): string | undefined => {
      const settings = new Map<string, string>(asked === undefined ? [] : [['statement_timeout', asked]]);
      capStatementTimeout(settings, 300);
      return settings.get('statement_timeout');
    };
    expect(capped('100')).toBe('100');
    expect(capped('0.2s')).toBe('0.2s');
    expect(capped('10s')).toBe('300');
    expect(capped('0')).toBe('300');
    // Postgres rounds to whole milliseconds: these would be 0, no timeout at all.
    expect(capped('0.4')).toBe('300');
    expect(capped('400us')).toBe('300');
    expect(capped('0.0001')).toBe('300');
    expect(capped('1')).toBe('1');
    expect(capped('soon')).toBe('300');
    expect(capped(undefined)).toBe('300');
  });
});

for (const mode of ['session', 'transaction'] as const) {
  describe(`per-tenant statement_timeout, ${mode} pooling`, () => {
    let proxy: TestProxy;
    const clients: pg.Client[] = [];
    const connect = async (tenant: string, options?: string): Promise<pg.Client> => {
      const client = await proxy.connect(tenant, options === undefined ? {} : { options });
      clients.push(client);
      return client;
    };
    const timeoutOf = async (client: pg.Client): Promise<string> =>
      (await client.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]?.statement_timeout ?? '';

    beforeAll(async () => {
      proxy = await startTestProxy({
        tenancy: {
          statementTimeoutMs: 5_000,
          tenants: [{ id: 'acme', statementTimeoutMs: 300 }, { id: 'globex', statementTimeoutMs: 0 }, { id: 'umbrella' }],
        },
        // Transaction pooling over one backend: every tenant's transactions take turns on it.
        pool: { mode, size: mode === 'transaction' ? 1 : 12, acquireTimeoutMs: 5_000 },
      });
    });
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await proxy?.close();
    });

    it('cancels a tenant statement that runs past its limit, and the session goes on', async () => {
      const acme = await connect('acme');
      expect(await timeoutOf(acme)).toBe('300ms');
      const cancelled = await errorOf(acme.query('SELECT pg_sleep(2)'));
      expect(cancelled.code).toBe('57014');
      expect((await acme.query('SELECT 1 AS ok')).rows[0]?.ok).toBe(1);
    });

    it('follows each tenant across a shared backend: own limit, the default, none', async () => {
      const acme = await connect('acme');
      const globex = await connect('globex');
      const umbrella = await connect('umbrella');
      for (let round = 0; round < 2; round++) {
        expect(await timeoutOf(acme)).toBe('300ms');
        expect(await timeoutOf(globex)).toBe('0');
        expect(await timeoutOf(umbrella)).toBe('5s');
      }
    });

    it('refuses to lift the limit and keeps a shorter one the client asks for', async () => {
      const acme = await connect('acme');
      for (const sql of ['SET statement_timeout = 0', 'SET LOCAL statement_timeout = 0', 'RESET statement_timeout', "SELECT set_config('statement_timeout', '0', false)"]) {
        const refused = await errorOf(acme.query(sql));
        expect(refused.code, sql).toBe('42501');
        expect(refused.message).toContain('statement_timeout');
      }
      expect(await timeoutOf(acme)).toBe('300ms');
      expect(await timeoutOf(await connect('acme', '-c statement_timeout=100'))).toBe('100ms');
      expect(await timeoutOf(await connect('acme', '-c statement_timeout=10s'))).toBe('300ms');
      expect(await timeoutOf(await connect('acme', '-c statement_timeout=0'))).toBe('300ms');
      // A tenant without a limit sets its own.
      const globex = await connect('globex');
      await globex.query("SET statement_timeout = '7s'");
      expect(await timeoutOf(globex)).toBe('7s');
    });
  });
}
