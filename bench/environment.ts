import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { run } from './proc.js';

/** A positive whole number from the environment variable `name`, or `fallback` when it is unset or empty. */
export function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, got "${raw}"`);
  return n;
}

/** "2 × AMD EPYC, 24 GiB": the cores, the CPU model and the memory of this machine. */
export function machine(): string {
  const cpu = os.cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

/** The commit pgfence was measured at, and whether src/ had uncommitted changes. */
export async function pgfenceRevision(): Promise<string> {
  const repo = fileURLToPath(new URL('..', import.meta.url));
  const commit = await run('git', ['rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000, cwd: repo }).catch(() => null);
  const dirty = await run('git', ['status', '--porcelain', '--', 'src'], { timeoutMs: 10_000, cwd: repo }).catch(() => null);
  return `${commit?.stdout.trim() ?? '?'}${dirty !== null && dirty.stdout.trim() !== '' ? ' with uncommitted changes in src/' : ''}`;
}
