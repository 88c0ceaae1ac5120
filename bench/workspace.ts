import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchDatabase } from './setup.js';
import type { Target } from './targets.js';

/**
 * What one benchmark invocation sets up and must take down whatever happens: a temp dir, the
 * embedded Postgres, the targets. Ctrl-C (or SIGTERM) stops them all and exits 130; `interrupted`
 * then tells the caller that a failure on the way out is not worth reporting.
 */
export interface Workspace {
  readonly tmp: string;
  readonly targets: Target[];
  db: BenchDatabase | null;
  readonly interrupted: boolean;
  cleanup(): Promise<void>;
}

export async function openWorkspace(prefix: string, say: (line: string) => void): Promise<Workspace> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(tmp, 0o711); // the OS user postgres (Postgres, PgBouncer) must traverse it when we are root
  let interrupted = false;
  const ws: Workspace = {
    tmp,
    targets: [],
    db: null,
    get interrupted() {
      return interrupted;
    },
    async cleanup() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const target of ws.targets) await target.close().catch(() => undefined);
      await ws.db?.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
  const onSignal = (): void => {
    interrupted = true;
    say('\ninterrupted: stopping pgfence, PgBouncer and Postgres');
    void ws.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return ws;
}
