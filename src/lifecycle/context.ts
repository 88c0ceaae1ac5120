import os from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import { nodePostgresTarget } from '../backend/node-postgres.js';
import { type ResolvedBackendTarget, resolveBackendTarget } from '../config/load.js';
import type { Config, ControlConfig } from '../config/schema.js';
import { DEFAULT_TARGET, type Placement, placementLabel } from '../placement/placement.js';
import { quoteIdent } from '../tenancy/names.js';

/** What a lifecycle action came to: `unchanged` when it was already done (every command is idempotent). */
export type Outcome = 'ok' | 'unchanged' | 'failed' | 'refused';

/** A lifecycle command refused (guards, a held lock) or failed; `outcome` picks the exit code. */
export class LifecycleError extends Error {
  constructor(
    readonly outcome: 'failed' | 'refused',
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'LifecycleError';
  }
}

export const refused = (message: string, detail?: Record<string, unknown>): LifecycleError => new LifecycleError('refused', message, detail);

/** Everything a lifecycle command works with. */
export interface LifecycleContext {
  config: Config;
  control: ControlConfig;
  /** The control schema, quoted. */
  schemaSql: string;
  /** The backend target as the provisioner logs in (host, port, database of backend). */
  provisioner: ResolvedBackendTarget;
  /** The proxy's service role (backend.user), granted what the proxy reads and serves. */
  serviceRole: string;
  /** Whoever runs the command, as the OS knows them; recorded in the audit table. */
  osUser: string;
  log: Logger;
  /** A connection as the provisioner to the control schema's database (the target `default`). */
  connect(applicationName?: string): Promise<pg.Client>;
  /**
   * A connection as the provisioner to where a tenant lives: its target (backends.NAME, with that
   * target's provisioner, else tenancy.control.provisioner, else the target's user) and its
   * database there. An unknown target is refused.
   */
  connectAt(placement: Placement, applicationName?: string): Promise<pg.Client>;
  /** Where connectAt logs in (what pg_dump is pointed at); an unknown target is refused. */
  targetAt(placement: Placement): ResolvedBackendTarget;
}

export function lifecycleContext(config: Config, log: Logger): LifecycleContext {
  const control = config.tenancy.control;
  if (control === undefined) {
    throw refused('tenancy.control is not configured: the lifecycle commands manage the registry pgfence owns (see `pgfence help config`)');
  }
  const backend = resolveBackendTarget(config.backend);
  const provisioner: ResolvedBackendTarget =
    control.provisioner === undefined ? backend : { ...backend, user: control.provisioner.user, password: control.provisioner.password };
  if (control.provisioner === undefined) {
    log.warn({ user: backend.user }, 'tenancy.control.provisioner is not set: running as the service role (backend.user); give the lifecycle commands their own role');
  }
  const targetAt = (placement: Placement): ResolvedBackendTarget => {
    const at = placement.target === DEFAULT_TARGET ? provisioner : otherTarget(config, placement, control);
    return placement.database === null ? at : { ...at, database: placement.database };
  };
  return {
    config,
    control,
    schemaSql: quoteIdent(control.schema),
    provisioner,
    serviceRole: backend.user,
    osUser: safeOsUser(),
    log,
    connect(applicationName = 'pgfence-lifecycle') {
      return open(provisioner, applicationName);
    },
    connectAt(placement, applicationName = 'pgfence-lifecycle') {
      return open(targetAt(placement), applicationName);
    },
    targetAt,
  };

  async function open(target: ResolvedBackendTarget, applicationName: string): Promise<pg.Client> {
    const client = new pg.Client({ ...nodePostgresTarget(target), connectionTimeoutMillis: config.backend.connectTimeoutMs, application_name: applicationName });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }
}

/** A target of backends as the provisioner logs in there (its database is the target's). */
function otherTarget(config: Config, placement: Placement, control: ControlConfig): ResolvedBackendTarget {
  const entry = config.backends?.[placement.target];
  if (entry === undefined) throw refused(`placement ${placementLabel(placement)}: "${placement.target}" is not a backend target (default, or a key of backends)`);
  const target = resolveBackendTarget(entry);
  const identity = entry.provisioner ?? control.provisioner;
  return identity === undefined ? target : { ...target, user: identity.user, password: identity.password };
}

function safeOsUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

export interface AuditEntry {
  action: string;
  tenant: string | null;
  outcome: Outcome;
  detail?: Record<string, unknown>;
}

/**
 * One audit row and one log line per action. The row goes in on `client` (inside the action's
 * transaction when there is one, so that the row and the change commit together); a failed insert
 * (no control schema yet) is logged and does not hide the action's own outcome.
 */
export async function audit(ctx: LifecycleContext, client: pg.Client | null, entry: AuditEntry): Promise<void> {
  const detail = entry.detail ?? {};
  const level = entry.outcome === 'failed' ? 'error' : entry.outcome === 'refused' ? 'warn' : 'info';
  ctx.log[level]({ action: entry.action, tenant: entry.tenant, outcome: entry.outcome, osUser: ctx.osUser, ...detail }, `tenant lifecycle: ${entry.action}`);
  if (client === null) return;
  try {
    await client.query(`INSERT INTO ${ctx.schemaSql}.audit (os_user, action, tenant_id, outcome, detail) VALUES ($1, $2, $3, $4, $5)`, [
      ctx.osUser,
      entry.action,
      entry.tenant,
      entry.outcome,
      JSON.stringify(detail),
    ]);
  } catch (error) {
    ctx.log.error({ action: entry.action, err: error instanceof Error ? error.message : String(error) }, 'the audit row could not be written');
  }
}

/** Runs `work` in a transaction on `client`: COMMIT when it returns, ROLLBACK when it throws. */
export async function inTransaction<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
