import { serialize } from 'pg-protocol';
import { openServerSession } from '../backend/handshake.js';
import type { TargetSpec } from './targets.js';

/** A probe gives up on a target after this long at most, so /readyz answers within its own deadline. */
const MAX_PROBE_MS = 1_500;

/**
 * The targets that cannot be reached now: each is connected to and authenticated against (as its
 * pool would), then the session is ended with Terminate. Runs the targets side by side.
 */
export async function unreachableTargets(specs: readonly TargetSpec[]): Promise<string[]> {
  const results = await Promise.all(
    specs.map(async (spec) => {
      try {
        const session = await openServerSession(spec.target, Math.min(spec.pool.connectTimeoutMs, MAX_PROBE_MS));
        session.socket.end(serialize.end());
        return null;
      } catch {
        return spec.name;
      }
    }),
  );
  return results.filter((name): name is string => name !== null);
}

/** What /readyz says of the targets: ready while one target answers; the body names the ones that do not. */
export function targetReadiness(unreachable: readonly string[], targets: number): { ready: boolean; detail: string | null } {
  if (unreachable.length === 0) return { ready: true, detail: null };
  return { ready: unreachable.length < targets, detail: `unreachable targets: ${unreachable.join(', ')}` };
}
