import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { driverEnv, itKnownFailing, POOL_MODES, pythonDriverMissing, runDriver, SYSTEM_PYTHON, titleFor } from './run-driver.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py', 'psycopg_scenarios.py');
const missing = await pythonDriverMissing('psycopg', 'python3-psycopg');

describe.skipIf(missing !== undefined).each(POOL_MODES)(titleFor('psycopg 3', missing), (mode) => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy({ pool: { mode, size: 4 } });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  const scenario = async <T>(name: string): Promise<T> => runDriver<T>(`psycopg ${name}`, SYSTEM_PYTHON, [SCRIPT, name], await driverEnv(proxy, 'acme'));

  it("connects and sees the tenant's rows under its pin", async () => {
    const result = await scenario<{ notes: string[]; search_path: string; encoding: string; server_version: number }>('connect');
    expect(result.notes).toEqual(['acme item 1', 'acme item 2']);
    expect(result.search_path).toBe('"tenant_acme", "public"');
    expect(result.encoding).toBe('utf-8');
    expect(result.server_version).toBeGreaterThanOrEqual(150000);
  });

  // psycopg prepares a statement on its 6th run (prepare_threshold 5) and, past prepared_max (100),
  // evicts the oldest with SQL `DEALLOCATE _pg3_N`. In transaction mode the server statement carries
  // pgfence's name, so the DEALLOCATE pgfence forwards unchanged fails with 26000 (known, not
  // supported yet).
  itKnownFailing(undefined)(
    'auto-prepares 130 distinct statements 8 times each, past prepare_threshold and prepared_max, with every result right',
    async () => {
      const result = await scenario('prepare');
      expect(result).toEqual({
        prepare_threshold: 5,
        prepared_max: 100,
        executed: 1040,
        statements_prepared: 130,
        // psycopg evicts when it first sees a new statement, before that one is prepared: 130
        // prepared, 29 deallocated (one as each of statements 102-130 first ran), 101 held.
        statements_held: 101,
        wrong: [],
      });
    },
  );

  it('runs a pipeline in autocommit and one inside a rolled-back transaction', async () => {
    const result = await scenario('pipeline');
    expect(result).toEqual({ count: 20, sum: 210, note7: 'pipe 7', count_inside: 30, count_after: 20 });
  });

  it('copies 500 rows in (tabs, newlines, backslashes included) and the same rows out', async () => {
    const result = await scenario('copy');
    expect(result).toEqual({
      count: 500,
      round_trip_equal: true,
      copied_out: 500,
      row50: [50, 'tab\there, newline\nthere, backslash \\ 50'],
    });
  });

  it('reads 1,000 rows through a named server-side cursor in a transaction, scrolling it', async () => {
    const result = await scenario('server-cursor');
    expect(result).toEqual({
      first: Array.from({ length: 10 }, (_, i) => [i + 1, 2 * (i + 1)]),
      middle: [501, 1002],
      count: 1000,
      sum: 500_500,
      open_after_close: 0,
    });
  });

  it('runs three AsyncConnections at once, each reading and committing', async () => {
    const result = await scenario('async');
    expect(result).toEqual({
      results: [
        [10, 'acme item 1'],
        [20, 'acme item 1'],
        [30, 'acme item 1'],
      ],
      ids: [1, 2, 3],
    });
  });
});
