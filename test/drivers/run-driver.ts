import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { hasCommand } from '../support/helpers.js';
import type { TestProxy } from '../support/proxy.js';

const run = promisify(execFile);

/** The pool modes every driver test runs in. */
export const POOL_MODES = ['session', 'transaction'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/** Debian's interpreter: python3-psycopg and python3-asyncpg install for it, not for a pyenv python3 on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** Where libpostgresql-jdbc-java puts pgjdbc. */
export const PGJDBC_JAR = '/usr/share/java/postgresql.jar';

/** What a driver script reported on stderr when it failed. */
export interface DriverFailure {
  type: string;
  sqlstate: string | null;
  message: string;
}

/** A driver script that exited non-zero; the message carries the driver's own error. */
export class DriverScriptError extends Error {
  constructor(
    readonly scenario: string,
    readonly failure: DriverFailure | undefined,
    readonly stderr: string,
  ) {
    super(
      failure === undefined
        ? `${scenario} failed: ${stderr.trim()}`
        : `${scenario} failed: ${failure.type} [${failure.sqlstate ?? 'no SQLSTATE'}] ${failure.message}`,
    );
  }
}

/** The environment a driver script reads its connection settings from (password = a fresh JWT). */
export async function driverEnv(proxy: TestProxy, tenant: string): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    PGFENCE_HOST: '127.0.0.1',
    PGFENCE_PORT: String(proxy.port),
    PGFENCE_USER: `${tenant}-app`,
    PGFENCE_DATABASE: 'app',
    PGFENCE_PASSWORD: await proxy.token(tenant),
    PYTHONDONTWRITEBYTECODE: '1', // no __pycache__ beside the scripts
  };
}

/**
 * Runs one scenario of a driver script and resolves with the JSON it printed; rejects with a
 * DriverScriptError when the script exits non-zero (its stderr's last line is the error as JSON).
 */
export async function runDriver<T>(scenario: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<T> {
  try {
    const { stdout } = await run(command, [...args], { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(stdout) as T;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    throw new DriverScriptError(scenario, lastJsonError(stderr), stderr);
  }
}

function lastJsonError(stderr: string): DriverFailure | undefined {
  const last = stderr.trim().split('\n').at(-1) ?? '';
  try {
    return (JSON.parse(last) as { error?: DriverFailure }).error;
  } catch {
    return undefined;
  }
}

/** Why a Python driver cannot run here (its Debian package is missing), or undefined when it can. */
export async function pythonDriverMissing(module: string, debianPackage: string): Promise<string | undefined> {
  return run(SYSTEM_PYTHON, ['-c', `import ${module}`]).then(
    () => undefined,
    () => `${debianPackage} is not installed (${SYSTEM_PYTHON} cannot import ${module}; .ci/run installs it)`,
  );
}

/** Why pgjdbc cannot run here (the JDK or libpostgresql-jdbc-java is missing), or undefined when it can. */
export async function pgjdbcMissing(): Promise<string | undefined> {
  const missing: string[] = [];
  if (!(await hasCommand('javac')) || !(await hasCommand('java'))) missing.push('default-jdk-headless (javac, java)');
  if (!(await access(PGJDBC_JAR).then(() => true, () => false))) missing.push(`libpostgresql-jdbc-java (${PGJDBC_JAR})`);
  return missing.length === 0 ? undefined : `${missing.join(' and ')} not installed; .ci/run installs them`;
}

/** A describe title that says, when the driver is missing, why its tests are skipped. */
export function titleFor(driver: string, missing: string | undefined): string {
  if (missing === undefined) return `${driver} through pgfence, %s pooling`;
  process.stderr.write(`[pgfence tests] SKIPPING ${driver} tests: ${missing}\n`);
  return `${driver} through pgfence, %s pooling (SKIPPED: ${missing})`;
}

/**
 * `it` for a test expected to pass; `it.fails` for one pgfence is known to fail today, where only
 * an error whose message matches one of `known` counts as the expected failure. Any other error
 * is written to stderr and swallowed, so `it.fails` goes red ("Expect test to fail") rather than
 * let a new, different failure hide behind the known one.
 */
export function itKnownFailing(known: readonly RegExp[] | undefined): (name: string, body: () => Promise<void>) => void {
  if (known === undefined) return (name, body) => it(name, body);
  return (name, body) =>
    it.fails(name, async () => {
      try {
        await body();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (known.some((pattern) => pattern.test(message))) throw error;
        process.stderr.write(`[pgfence tests] not a known failure (${known.map(String).join(', ')}): ${message}\n`);
      }
    });
}
