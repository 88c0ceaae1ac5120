import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from '../support/helpers.js';
import { cliEnv } from '../drivers/support.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const run = promisify(execFile);

const havePsql = await hasCommand('psql');
const havePgbench = await hasCommand('pgbench');

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { size: 6, acquireTimeoutMs: 10_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

const envFor = (tenant: string): Promise<NodeJS.ProcessEnv> => cliEnv(proxy, tenant);

async function psql(tenant: string, ...commands: string[]): Promise<{ stdout: string; stderr: string }> {
  const args = ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0', ...commands.flatMap((c) => ['-c', c])];
  return run('psql', args, { env: await envFor(tenant), timeout: 30_000 });
}

describe.skipIf(!havePsql)('psql through pgfence', () => {
  it("sees the tenant's rows, lists its tables, and keeps going after a refused statement", async () => {
    const { stdout, stderr } = await psql(
      'acme',
      'SELECT note FROM items ORDER BY id',
      '\\dt',
      'SELECT * FROM tenant_globex.secrets',
      "SELECT 'still here', current_setting('search_path')",
    );
    expect(stdout).toContain('acme item 1');
    expect(stdout).toMatch(/tenant_acme\|items\|table/);
    expect(stdout).not.toMatch(/tenant_globex\|/);
    expect(stderr).toMatch(/ERROR: {2}pgfence: access to schema "tenant_globex" is not allowed/);
    expect(stdout).toContain('still here|"tenant_acme", "public"');
  });

  it('describes a table and shows search_path with backslash commands', async () => {
    const { stdout } = await psql('globex', '\\d items', 'SHOW search_path');
    expect(stdout).toContain('id|integer||not null|nextval(\'items_id_seq\'::regclass)');
    expect(stdout).toContain('owner|text||not null|\'globex\'::text');
    expect(stdout).toContain('"tenant_globex", "public"');
  });

  it('gets a clear FATAL for a bad token, a suspended and an unknown tenant', async () => {
    const env = await envFor('acme');
    const bad = await run('psql', ['-X', '-c', 'SELECT 1'], { env: { ...env, PGPASSWORD: 'not-a-jwt' } }).catch((e: { stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toContain('pgfence: the password is not a well-formed JWT');
    const suspended = await run('psql', ['-X', '-c', 'SELECT 1'], { env: { ...env, PGPASSWORD: await proxy.token('initech') } }).catch(
      (e: { stderr: string }) => e,
    );
    expect((suspended as { stderr: string }).stderr).toContain('pgfence: tenant "initech" is suspended');
    const unknown = await run('psql', ['-X', '-c', 'SELECT 1'], { env: { ...env, PGPASSWORD: await proxy.token('nobody') } }).catch(
      (e: { stderr: string }) => e,
    );
    expect((unknown as { stderr: string }).stderr).toContain('pgfence: unknown tenant "nobody"');
  });
});

describe.skipIf(!havePgbench)('pgbench through pgfence', () => {
  it('initialises its tables in the tenant schema and runs a select-only custom script', async () => {
    const env = await envFor('umbrella');
    await run('pgbench', ['-i', '-s', '1', '-q', '--no-vacuum'], { env, timeout: 120_000 });
    const owned = await proxy.direct<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'tenant_umbrella' AND tablename LIKE 'pgbench_%'",
    );
    expect(owned.rows[0]?.n).toBe(4);
    const inPublic = await proxy.direct<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'pgbench_%'");
    expect(inPublic.rows[0]?.n).toBe(0);

    const script = path.join(os.tmpdir(), `pgfence-select-${process.pid}.sql`);
    await writeFile(script, '\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n');
    const { stdout } = await run('pgbench', ['-n', '-f', script, '-c', '4', '-j', '2', '-t', '200', '-M', 'extended'], { env, timeout: 120_000 });
    expect(stdout).toMatch(/number of transactions actually processed: 800\/800/);
    expect(stdout).toMatch(/number of failed transactions: 0/);
  });

  it('runs the built-in select-only script with prepared statements (session pooling)', async () => {
    const env = await envFor('umbrella');
    const { stdout } = await run('pgbench', ['-n', '-S', '-M', 'prepared', '-c', '2', '-t', '200'], { env, timeout: 120_000 });
    expect(stdout).toMatch(/number of transactions actually processed: 400\/400/);
  });
});
