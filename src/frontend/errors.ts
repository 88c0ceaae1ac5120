import type { ErrorFields } from '../protocol/build.js';

/**
 * Every error pgfence itself sends to a client, by name, each with a fixed SQLSTATE.
 * FATAL ones end the connection; ERROR ones are followed by ReadyForQuery.
 */
const fatal = (sqlstate: string, message: string, detail?: string): ErrorFields => ({ severity: 'FATAL', sqlstate, message, detail });
const error = (sqlstate: string, message: string, detail?: string): ErrorFields => ({ severity: 'ERROR', sqlstate, message, detail });

export const clientErrors = {
  protocolViolation: (what: string) => fatal('08P01', `pgfence: protocol violation: ${what}`),
  unsupportedProtocol: (major: number, minor: number) =>
    fatal('0A000', `pgfence: unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`),
  startupTimeout: () => fatal('08P01', 'pgfence: startup and authentication did not finish in time'),
  tlsRequired: () =>
    fatal('28000', 'pgfence: a JWT may not be sent over an unencrypted connection from a non-loopback address',
      'Connect over TLS, or from the same host; the operator can set listen.allowPlaintextJwt.'),
  tlsRequiredAlways: () => fatal('28000', 'pgfence: this server accepts only TLS connections', 'Connect with sslmode=require or stronger.'),
  notAdmin: (claim: string) => fatal('28000', `pgfence: this token does not open the admin console (it needs the claim "${claim}": true)`),
  consoleUnavailable: () => fatal('08004', 'pgfence: the admin console is not available in this process'),
  consoleSimpleQueryOnly: () => fatal('0A000', 'pgfence: the admin console speaks the simple query protocol only (use psql)'),
  passwordExpected: () => fatal('08P01', 'pgfence: expected a password message carrying a JWT'),
  authFailed: (sqlstate: string, message: string) => fatal(sqlstate, message),
  tenantRefused: (sqlstate: string, message: string) => fatal(sqlstate, message),
  /** The tenant's placement cannot be served: unknown target (08004), unreachable (08001), too many databases (53300). */
  placementRefused: (sqlstate: string, message: string, detail: string) => fatal(sqlstate, message, detail),
  unsupportedStartupParameter: (name: string) =>
    fatal('08P01', `pgfence: unsupported startup parameter: ${name}`),
  pinStartupParameter: (name: string) =>
    fatal('42501', `pgfence: startup parameter "${name}" would change the tenant pin and is not allowed`),
  replicationRefused: () => fatal('08P01', 'pgfence: replication connections are not supported'),
  parserUnsafeSetting: (name: string, value: string) =>
    fatal('0A000', `pgfence: ${name} "${value}" is not supported; pgfence requires UTF8 and standard_conforming_strings = on`),
  tenantSchemaMissing: (tenant: string) => fatal('3F000', `pgfence: the schema of tenant "${tenant}" does not exist`),
  tenantRoleUnusable: (tenant: string, message: string) =>
    fatal('28000', `pgfence: the database role of tenant "${tenant}" cannot be used: ${message}`,
      'Create the role and grant it to the pool\'s user: pgfence roles --config FILE --apply.'),
  invalidSessionSetting: (message: string) => fatal('22023', `pgfence: ${message}`),
  poolTimeout: (ms: number) => fatal('53300', `pgfence: no server connection became available within ${ms} ms`),
  backendUnavailable: () => fatal('08006', 'pgfence: could not connect to the database server'),
  /** Postgres refused the server connection with 53300 (max_connections, reserved slots, a CONNECTION LIMIT): its words, its code. */
  backendTooManyConnections: (message: string) =>
    fatal('53300', message, 'pgfence could not open a server connection for this client: the database server has no connection slot left for it.'),
  backendLost: () => fatal('08006', 'pgfence: server connection lost'),
  tripwire: (what: string) =>
    fatal('42501', `pgfence: the server session changed ${what} outside the tenant pin; connection closed`),
  tenantKilled: (tenant: string) => fatal('57P01', `pgfence: the connections of tenant "${tenant}" were terminated by an administrator`),
  /** `pgfence tenant move`: a session bound to a server of the tenant's old placement; reconnecting reaches the new one. */
  tenantMoved: (tenant: string) =>
    fatal('57P01', `pgfence: tenant "${tenant}" is being moved to another placement; reconnect to be served there`,
      'New connections and transactions of the tenant wait while it is paused, then go to its new placement.'),
  shuttingDown: () => fatal('57P01', 'pgfence: terminating connection because pgfence is shutting down'),
  internal: () => fatal('XX000', 'pgfence: internal error'),
  functionCallRefused: () => error('42501', 'pgfence: the fast-path function call protocol is not allowed'),
  invalidEncoding: () => error('22021', 'pgfence: invalid byte sequence for encoding "UTF8"'),
  notInTransactionPooling: (what: string) =>
    error('0A000', `pgfence: ${what} is not supported in transaction pooling mode (it would outlive the transaction on a shared server connection)`,
      'Use pool.mode: session for clients that need it.'),
  channelNameTooLong: (channel: string) =>
    error('42622', `pgfence: channel name "${channel.slice(0, 63)}" is too long once made tenant-private (tenant id + "." + channel must fit in 63 bytes)`),
  statementRejected: (sqlstate: string, message: string) => error(sqlstate, message),
  resetNotInExtendedProtocol: () =>
    error('0A000', 'pgfence: RESET ALL and DISCARD ALL must be sent as a simple query (pgfence pins the tenant again right after them)'),
} as const;
