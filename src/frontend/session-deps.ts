import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { ConsoleContext } from '../admin/console.js';
import type { Metrics } from '../admin/index.js';
import type { TokenVerifier } from '../auth/index.js';
import type { Config } from '../config/schema.js';
import type { Guard } from '../guard/index.js';
import type { BackendPool } from '../pool/pool.js';
import type { BackendPools } from '../placement/pools.js';
import type { TenantPauses } from '../placement/tenant-pauses.js';
import type { TenantResolver } from '../tenancy/index.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { ChannelListeners } from '../placement/listeners.js';

/** What every client session reads; a reload replaces fields, reaching new connections and transactions. */
export interface SessionDeps {
  metrics: Metrics;
  /** What the admin console (database `pgfence`) reads and acts on; null where there is none. */
  console: ConsoleContext | null;
  /** Offered to clients that send SSLRequest; null answers 'N'. */
  tls: tls.SecureContext | null;
  config: Config;
  guard: Guard;
  verifier: TokenVerifier;
  tenants: TenantResolver;
  /** The pool of the target `default` (the admin console's). */
  pool: BackendPool;
  /** Every target's pools: a session takes its tenant's placement's. */
  pools: BackendPools;
  cancels: CancelRegistry;
  /** Holds the error replies of addresses that keep failing to authenticate. */
  authThrottle: AuthThrottle;
  /** Tenants paused for a move (`pgfence tenant move`); null without tenancy.control. */
  pauses: TenantPauses | null;
  /** Transaction pooling's LISTEN: one server connection per placement in use, listening for every client there. */
  listeners: ChannelListeners;
  log: Logger;
}
