import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { TestProxy } from './proxy.js';
import { passwordMessage, startupMessage, WireClient } from './wire.js';

const run = promisify(execFile);

/** True when a command (psql, pgbench, openssl) is on PATH; tests that need it skip otherwise. */
export async function hasCommand(command: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${command}`]).then(
    () => true,
    () => false,
  );
}

/** The error a statement fails with; throws if it succeeds. */
export async function errorOf(promise: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await promise;
  } catch (error) {
    return error as pg.DatabaseError;
  }
  throw new Error('expected the statement to fail');
}

/** The error a promise rejects with, which must be a `type`; throws if it resolves or fails otherwise. */
export async function rejectionOf<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}`);
}

/** A raw protocol client through pgfence, authenticated as `tenant` and ready for queries. */
export async function authenticatedWire(proxy: TestProxy, tenant: string): Promise<WireClient> {
  const wire = await WireClient.connect(proxy.port);
  wire.write(startupMessage({ user: `${tenant}-user`, database: 'app' }));
  await wire.until('R');
  wire.write(passwordMessage(await proxy.token(tenant)));
  await wire.until('Z');
  return wire;
}

/**
 * Calls `probe` until it returns something other than undefined, and returns that. Each call is
 * awaited (a query, a console command: a real round trip), so the loop waits for the event
 * without a sleep; it gives up after `polls` calls, a count, not a time.
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, polls = 10_000): Promise<T> {
  for (let i = 0; i < polls; i++) {
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error(`${what}: still not so after ${polls} polls`);
}

/** Waits (up to 5 s) until a server process is gone; true if it is. */
export async function backendGone(proxy: TestProxy, pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const r = await proxy.direct<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (r.rows[0]?.n === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** A port nothing listens on (bound, then closed): a backend or target there is down. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
