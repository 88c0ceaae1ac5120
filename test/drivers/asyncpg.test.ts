import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { driverEnv, itKnownFailing, POOL_MODES, pythonDriverMissing, runDriver, SYSTEM_PYTHON, titleFor } from './run-driver.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py', 'asyncpg_scenarios.py');
const missing = await pythonDriverMissing('asyncpg', 'python3-asyncpg');

// Known failures, not supported by pgfence yet. Every asyncpg connection: asyncpg sends
// client_encoding 'utf-8' (quotes included) and pgfence refuses it with FATAL 0A000, so every test
// here fails at connect today. Behind that (seen with the encoding accepted): a pool's release sends
// `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`, refused with 42501, and
// LISTEN is refused in transaction mode.
const ENCODING_REFUSED = /\[0A000\] pgfence: client_encoding "'utf-8'" is not supported/;
const RESET_ALL_REFUSED = /\[42501\] pgfence: RESET ALL and DISCARD ALL are not allowed/;
const LISTEN_REFUSED = /\[0A000\] pgfence: LISTEN is not supported in transaction pooling mode/;

describe.skipIf(missing !== undefined).each(POOL_MODES)(titleFor('asyncpg', missing), (mode) => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy({ pool: { mode, size: 4 } });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  const scenario = async <T>(name: string): Promise<T> => runDriver<T>(`asyncpg ${name}`, SYSTEM_PYTHON, [SCRIPT, name], await driverEnv(proxy, 'acme'));

  itKnownFailing([ENCODING_REFUSED])("connects and sees the tenant's rows under its pin", async () => {
    const result = await scenario('connect');
    expect(result).toEqual({ notes: ['acme item 1', 'acme item 2'], search_path: '"tenant_acme", "public"', client_encoding: 'UTF8' });
  });

  itKnownFailing([ENCODING_REFUSED, RESET_ALL_REFUSED])('acquires and releases pooled connections, one at a time and four at once over two', async () => {
    const result = await scenario('pool');
    expect(result).toEqual({ sequential: [0, 3, 6, 9, 12], concurrent: [0, 1, 2, 2] });
  });

  itKnownFailing([ENCODING_REFUSED])('prepares statements and executes them with parameters', async () => {
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

  itKnownFailing(mode === 'transaction' ? [ENCODING_REFUSED, LISTEN_REFUSED] : [ENCODING_REFUSED])('gets a NOTIFY from another connection of the same tenant through add_listener', async () => {
    const result = await scenario('listen');
    expect(result).toEqual({ channel: 'events', payload: 'hello from asyncpg' });
  });
});
