import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type pg from 'pg';
import { it } from 'vitest';
import { startTestProxy, type TestProxy, type TestProxyOptions } from '../support/proxy.js';

const run = promisify(execFile);

/** The pool modes every driver file runs in, one `describe.each` block each. */
export const POOL_MODES = ['session', 'transaction'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/** A test proxy (its own database, seeded with the test tenants) pooling in `mode` over 4 backends. */
export function startDriverProxy(mode: PoolMode, options: TestProxyOptions = {}): Promise<TestProxy> {
  return startTestProxy({ pool: { mode, size: 4, acquireTimeoutMs: 10_000 } }, options);
}

/**
 * `it.fails` where a test states behaviour pgfence does not have yet, `it` elsewhere.
 * PGFENCE_SHOW_EXPECTED_FAILURES=1 runs them all as plain tests, to see the error each one hits.
 */
export function itFailsWhen(failsToday: boolean): typeof it | typeof it.fails {
  return failsToday && process.env['PGFENCE_SHOW_EXPECTED_FAILURES'] !== '1' ? it.fails : it;
}

/** libpq's environment for a command-line client (psql, pg_dump) through pgfence as `tenant`. */
export async function cliEnv(proxy: TestProxy, tenant: string): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(proxy.port),
    PGUSER: `${tenant}-user`,
    PGDATABASE: 'app',
    PGPASSWORD: await proxy.token(tenant),
    PGSSLMODE: 'prefer', // libpq asks for TLS first; pgfence answers N and it carries on in plaintext
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'pgfence-driver-test',
  };
}

export interface ToolResult {
  /** The exit code; 0 on success. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, whatever its exit code (execFile rejects on non-zero; this does not). */
export async function runTool(command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await run(command, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof failed.code !== 'number') throw error; // not started (ENOENT) or killed by the timeout
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** What `command --version` reports (`pg_dump (PostgreSQL) 15.18 (Debian …)` → 15, "15.18"); null if it cannot run. */
export async function toolVersion(command: string): Promise<{ major: number; version: string } | null> {
  try {
    const { stdout } = await run(command, ['--version']);
    const match = /\(PostgreSQL\)\s+((\d+)\S*)/.exec(stdout);
    return match === null ? null : { major: Number(match[2]), version: match[1] as string };
  } catch {
    return null;
  }
}

/** The notifications a node-postgres client has received, and a wait until there are `total` of them. */
export function collectNotifications(client: pg.Client): { received: pg.Notification[]; atLeast(total: number, timeoutMs?: number): Promise<pg.Notification[]> } {
  const received: pg.Notification[] = [];
  let wake: (() => void) | undefined;
  client.on('notification', (n) => {
    received.push(n);
    wake?.();
  });
  return {
    received,
    async atLeast(total, timeoutMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      let timedOut = false;
      void expired.then(() => {
        timedOut = true;
      });
      try {
        while (received.length < total && !timedOut) {
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), expired]);
        }
      } finally {
        clearTimeout(timer);
        wake = undefined;
      }
      if (received.length < total) throw new Error(`expected ${total} notification(s) within ${timeoutMs} ms, got ${received.length}`);
      return received;
    },
  };
}
