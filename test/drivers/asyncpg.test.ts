import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { driverEnv, itKnownFailing, POOL_MODES, pythonDriverMissing, runDriver, SYSTEM_PYTHON, titleFor } from './run-driver.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py', 'asyncpg_scenarios.py');
const missing = await pythonDriverMissing('asyncpg', 'python3-asyncpg');

// A pool's release sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`.

describe.skipIf(missing !== undefined).each(POOL_MODES)(titleFor('asyncpg', missing), (mode) => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy({ pool: { mode, size: 4 } });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  const scenario = async <T>(name: string): Promise<T> => runDriver<T>(`asyncpg ${name}`, SYSTEM_PYTHON, [SCRIPT, name], await driverEnv(proxy, 'acme'));

  itKnownFailing(undefined)("connects and sees the tenant's rows under its pin", async () => {
    const result = await scenario('connect');
    expect(result).toEqual({ notes: ['acme item 1', 'acme item 2'], search_path: '"tenant_acme", "public"', client_encoding: 'UTF8' });
  });

  itKnownFailing(undefined)('acquires and releases pooled connections, one at a time and four at once over two', async () => {
    const result = await scenario('pool');
    expect(result).toEqual({ sequential: [0, 3, 6, 9, 12], concurrent: [0, 1, 2, 2] });
  });

  itKnownFailing(undefined)('prepares statements and executes them with parameters', async () => {
    const result = await scenario('prepare');
    expect(result).toEqual({
      rows: [
        { id: 1, note: 'acme item 1' },
        { id: 2, note: 'acme item 2' },
      ],
      sums: [11, 22, 33, 44, 55, 66, 77, 88, 99, 110],
      parameter_types: ['int4', 'int4'],
      columns: ['id', 'note'],
    });
  });

  itKnownFailing(undefined)('gets a NOTIFY from another connection of the same tenant through add_listener', async () => {
    const result = await scenario('listen');
    expect(result).toEqual({ channel: 'events', payload: 'hello from asyncpg' });
  });
});
