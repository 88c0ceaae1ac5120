import type { Logger } from 'pino';
import type { Metrics } from '../admin/index.js';
import { AuthError, readClaim } from '../auth/index.js';
import { TOO_MANY_CONNECTIONS } from '../admin/readiness.js';
import { BackendClosedError, BackendError } from '../backend/connection.js';
import { PinBreach } from '../binding/binding.js';
import { fencePolicy, type TenantFence } from '../guard/index.js';
import type { ErrorFields } from '../protocol/build.js';
import { BackendUnavailableError, PoolTimeoutError } from '../pool/pool.js';
import { PlacementRefused } from '../placement/errors.js';
import type { Placement } from '../placement/placement.js';
import { type Tenant, TenantRefused } from '../tenancy/index.js';
import { hold } from './auth-throttle.js';
import { clientErrors } from './errors.js';
import { isTenantRoleError } from './pin.js';
import type { SessionDeps } from './session-deps.js';
import { capStatementTimeout, sessionSettings, StartupParamError } from './startup-params.js';

/** The virtual database of the admin console. */
export const CONSOLE_DATABASE = 'pgfence';

/** Who a password message proved the client to be. */
export type Authenticated =
  | { kind: 'tenant'; tenant: Tenant; user: string | undefined; settings: Map<string, string>; fence: TenantFence }
  | { kind: 'console'; user: string | undefined };

/**
 * Verifies the JWT a client sent as its password and resolves what it may do: a tenant with its
 * fence and session settings, or the admin console. Throws what `refusal` turns into a FATAL.
 */
export async function authenticate(token: string, params: ReadonlyMap<string, string>, deps: SessionDeps): Promise<Authenticated> {
  if (token.length === 0) throw new AuthError('empty_password');
  const { config } = deps;
  if (params.get('database') === CONSOLE_DATABASE) {
    const claims = await deps.verifier.verifyClaims(token);
    const claim = config.admin.consoleClaim;
    if (readClaim(claims, claim) !== true) throw new ConsoleRefused(clientErrors.notAdmin(claim));
    if (deps.console === null) throw new ConsoleRefused(clientErrors.consoleUnavailable());
    const user = readClaim(claims, config.jwt.userClaim);
    return { kind: 'console', user: typeof user === 'string' ? user : params.get('user') };
  }
  const identity = await deps.verifier.verify(token);
  const tenant = await deps.tenants.resolve(identity.tenantId);
  const settings = sessionSettings(params, config.tenancy.tenantGuc);
  capStatementTimeout(settings, tenant.statementTimeoutMs ?? 0);
  const fence: TenantFence = {
    ownSchema: tenant.schema,
    sharedSchemas: config.tenancy.sharedSchemas,
    tenantGuc: config.tenancy.tenantGuc,
    policy: fencePolicy(config.policy, tenant.id, (tenant.statementTimeoutMs ?? 0) > 0 ? ['statement_timeout'] : []),
  };
  return { kind: 'tenant', tenant, user: identity.user ?? params.get('user'), settings, fence };
}

/**
 * A failed authentication from an address that keeps failing waits before its FATAL is sent
 * (AuthThrottle); resolves to whether it was throttled. Other refusals are answered at once.
 */
export async function holdFailure(error: unknown, address: string | undefined, deps: SessionDeps): Promise<boolean> {
  if (!(error instanceof AuthError)) return false;
  const verdict = deps.authThrottle.failed(address);
  await hold(verdict.holdMs);
  return verdict.throttled;
}

/** An admin token that does not open the console, or a process without one. */
export class ConsoleRefused extends Error {
  constructor(readonly fields: ErrorFields) {
    super(fields.message);
  }
}

/**
 * What a client is told, what is logged and counted, when its connection cannot be served:
 * authentication, tenant, startup settings, or the backend the pin needs. Null for an error
 * pgfence did not expect (a bug: logged with its stack, the client sees a generic error).
 */
export function refusal(
  error: unknown,
  context: { tenantId: string | null; atConnect: boolean; throttled?: boolean; placement?: Placement | null },
  deps: { config: SessionDeps['config']; metrics: Metrics; log: Logger },
): ErrorFields | null {
  const { metrics, log } = deps;
  const tenancy = deps.config.tenancy;
  const tenantId = context.tenantId;
  /** One count per refused connection, by why it was refused (not for a failure later on). */
  const refuse = (outcome: Parameters<Metrics['clientConnection']>[0], reason?: string): void => {
    if (!context.atConnect) return;
    metrics.clientConnection(outcome);
    if (reason !== undefined) metrics.authFailure(reason);
  };
  if (error instanceof AuthError) {
    refuse('auth_failed', error.reason);
    // A throttled address's failures are not logged one by one (AuthThrottle logged the burst).
    if (context.throttled === true) log.debug({ reason: error.reason, throttled: true }, 'authentication failed');
    else log.warn({ reason: error.reason }, 'authentication failed');
    return clientErrors.authFailed(error.sqlstate, error.message);
  }
  if (error instanceof ConsoleRefused) {
    refuse('auth_failed');
    return error.fields;
  }
  if (error instanceof TenantRefused) {
    refuse('tenant_refused', error.reason);
    log.warn({ reason: error.reason }, 'tenant refused');
    return clientErrors.tenantRefused(error.sqlstate, error.message);
  }
  if (error instanceof StartupParamError) {
    refuse('startup_refused');
    return error.fields;
  }
  if (error instanceof PoolTimeoutError) {
    refuse('backend_unavailable');
    return clientErrors.poolTimeout(error.waitedMs);
  }
  if (error instanceof PlacementRefused) {
    if (error.problem === 'unknown_target') refuse('tenant_refused', error.problem);
    else refuse('backend_unavailable');
    log.error({ reason: error.problem, target: error.placement.target }, error.message);
    return clientErrors.placementRefused(error.sqlstate, error.message, error.detail);
  }
  const placement = context.placement ?? null;
  if (error instanceof BackendUnavailableError && tenantId !== null && placement !== null) {
    // A tenant with a placement: the error names its target, and only its tenants see it.
    const refused = new PlacementRefused('target_unreachable', tenantId, placement, { cause: error });
    refuse('backend_unavailable');
    log.error({ err: error.message, target: placement.target }, 'backend target unreachable');
    return clientErrors.placementRefused(refused.sqlstate, refused.message, refused.detail);
  }
  if (error instanceof BackendUnavailableError) {
    refuse('backend_unavailable');
    log.error({ err: error }, 'backend unavailable');
    const cause = error.cause;
    if (cause instanceof BackendError && cause.sqlstate === TOO_MANY_CONNECTIONS) return clientErrors.backendTooManyConnections(cause.message);
    return clientErrors.backendUnavailable();
  }
  if (error instanceof PinBreach) {
    refuse('startup_refused');
    metrics.tripwire(error.what);
    return clientErrors.tripwire(error.what);
  }
  if (error instanceof BackendClosedError) {
    refuse('backend_unavailable');
    log.warn({ err: error }, 'server connection lost while binding');
    return clientErrors.backendLost();
  }
  if (error instanceof BackendError && error.sqlstate === '3F000' && tenantId !== null) {
    refuse('tenant_refused', 'tenant_schema_missing');
    log.error('tenant schema missing');
    return clientErrors.tenantSchemaMissing(tenantId);
  }
  if (error instanceof BackendError && tenantId !== null && isTenantRoleError(tenancy, error.sqlstate)) {
    refuse('tenant_refused', 'tenant_role_unusable');
    log.error({ err: error }, 'tenant role unusable');
    return clientErrors.tenantRoleUnusable(tenantId, error.message);
  }
  if (error instanceof BackendError) {
    // The backend refused a session setting the client asked for (e.g. an unknown TimeZone).
    refuse('startup_refused');
    return clientErrors.invalidSessionSetting(error.message);
  }
  refuse('startup_refused');
  return null;
}
