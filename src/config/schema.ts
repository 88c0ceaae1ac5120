import { z } from 'zod';
import { forbiddenFunction, LIFTABLE_STATEMENTS } from '../guard/rules.js';
import { MAX_PEER_ID, MAX_WORKERS } from '../cluster/cancel-key.js';
import { postgresUrlProblem } from './postgres-url.js';

/**
 * The one source of truth for pgfence's configuration: validation, defaults and (through
 * the `.describe()` texts) the documented reference. config/pgfence.example.yaml mirrors it.
 */

const TENANT_ID = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;
const GUC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*\.[a-zA-Z_][a-zA-Z0-9_]*$/;
const SCHEMA_NAME = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;
/** Role names follow the schema-name rule: ASCII, so at most 63 bytes (Postgres's NAMEDATALEN - 1). */
const ROLE_NAME = SCHEMA_NAME;

/** Marks a key whose value is never echoed in an error (and is flagged in the reference). */
const SECRET = { secret: true } as const;

export const JWT_ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA',
] as const;

const authThrottleSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Hold the error replies of repeated failed logins from one client address.'),
    freeFailures: z
      .number().int().min(0).default(5)
      .describe('Failed logins an address may make in a window before its further failures are held.'),
    windowMs: z
      .number().int().positive().default(60_000)
      .describe('An address is forgiven after this long without a failed login.'),
    delayMs: z
      .number().int().positive().default(250)
      .describe('How long the first held failure waits; each further one waits twice as long as the one before.'),
    maxDelayMs: z
      .number().int().positive().default(5_000)
      .describe('The longest a failure is held. A hold that outlasts listen.startupTimeoutMs ends with the startup-timeout FATAL instead.'),
    maxAddresses: z
      .number().int().min(1).default(10_000)
      .describe('Client addresses remembered at once (least recently failed forgotten first).'),
  })
  .strict();

const listenSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1').describe('Address pgfence listens on.'),
    port: z.number().int().min(0).max(65535).default(6432).describe('TCP port; 0 picks a free one.'),
    allowPlaintextJwt: z
      .boolean()
      .default(false)
      .describe('Accept a JWT over plaintext TCP from a non-loopback client (tokens are bearer secrets).'),
    startupTimeoutMs: z
      .number().int().positive().default(10_000)
      .describe('A client must finish startup and authentication within this time.'),
    maxMessageBytes: z
      .number().int().min(1024).max(1024 * 1024 * 1024).default(256 * 1024 * 1024)
      .describe('Largest protocol message accepted from a client or a backend.'),
    requireTls: z
      .boolean().default(false)
      .describe('Refuse every client that does not use TLS, loopback included (needs listen.tls).'),
    shutdownTimeoutMs: z
      .number().int().min(0).default(30_000)
      .describe('On SIGTERM/SIGINT, how long running transactions may finish before clients are cut off.'),
    tls: z
      .object({
        cert: z.string().min(1).describe('Server certificate chain: PEM text or the path of a PEM file.'),
        key: z.string().min(1).meta({ secret: true }).describe('Private key of the certificate: PEM text or the path of a PEM file.'),
      })
      .strict()
      .optional()
      .describe('Offer TLS to clients (SSLRequest is answered S); without it pgfence answers N.'),
    authThrottle: authThrottleSchema
      .default(() => authThrottleSchema.parse({}))
      .describe('Failed-authentication throttling per client address: a valid login is never slowed.'),
  })
  .strict()
  .superRefine((listen, ctx) => {
    if (listen.requireTls && listen.tls === undefined) {
      ctx.addIssue({ code: 'custom', path: ['requireTls'], message: 'needs listen.tls (a certificate and key)' });
    }
  });

const backendSchema = z
  .object({
    url: z
      .string()
      .superRefine((url, ctx) => {
        const problem = postgresUrlProblem(url);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .meta(SECRET)
      .describe('postgres://user:password@host:port/database; fields below override it.'),
    host: z.string().min(1).optional().describe('Backend host (default 127.0.0.1).'),
    port: z.number().int().min(1).max(65535).optional().describe('Backend port (default 5432).'),
    database: z.string().min(1).optional().describe('Backend database (default postgres).'),
    user: z.string().min(1).optional().describe('Service role pgfence logs in as (default postgres).'),
    password: z.string().optional().meta(SECRET).describe('Password of the service role; use ${ENV_VAR} to keep it out of the file.'),
    connectTimeoutMs: z.number().int().positive().default(5_000).describe('Time to connect and authenticate a backend.'),
    sslmode: z
      .enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).default('disable')
      .describe('TLS to the backend, as libpq: prefer falls back to plaintext, require encrypts, verify-* also check the certificate.'),
    sslRootCert: z
      .string().min(1).optional()
      .describe('CA certificate(s) for verify-ca / verify-full: PEM text or the path of a PEM file (default: the system store).'),
  })
  .strict();

/** Pool limits a backend target may set for itself; unset keys take the top-level pool's. */
const targetPoolSchema = z
  .object({
    size: z.number().int().min(1).max(10_000).optional().describe('Most backends to this target (default pool.size).'),
    maxPerTenant: z.number().int().min(0).optional().describe('Most backends one tenant may hold on this target; 0 = no cap (default pool.maxPerTenant).'),
    databaseSize: z.number().int().min(1).max(10_000).optional().describe('Most backends to each tenant database on this target (default pool.databaseSize).'),
    maxDatabases: z.number().int().min(0).max(10_000).optional().describe('Most tenant databases with a pool of their own at once on this target (default pool.maxDatabases).'),
  })
  .strict();

/** The role the lifecycle commands (`pgfence init`, `pgfence tenant`) log in as; `where` says where. */
const provisionerSchema = (where: string) =>
  z
    .object({
      user: z.string().min(1).describe(`Role the \`pgfence init\` and \`pgfence tenant\` commands log in as ${where}.`),
      password: z.string().optional().meta(SECRET).describe('Password of the provisioner role; use ${ENV_VAR}.'),
    })
    .strict()
    .optional();

/** A named backend target (backends.NAME): the keys of `backend`, and pool limits of its own. */
const backendTargetSchema = backendSchema.extend({
  pool: targetPoolSchema.optional().describe('Pool limits of this target; unset keys take the top-level pool\'s.'),
  provisioner: provisionerSchema('on this target').describe('The lifecycle commands\' identity on this target. Unset: tenancy.control.provisioner (a role of the same name on this server), else this target\'s user.'),
});

/** Target names: the tenant-id alphabet; `default` is the `backend` key. */
const TARGET_NAME = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;

const placementSchema = z
  .object({
    target: z
      .string().regex(TARGET_NAME, 'target name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$').default('default')
      .describe('Backend target holding the tenant: `default` (the `backend` key) or a key of `backends`.'),
    database: z
      .string().min(1).max(63).optional()
      .describe('The tenant\'s own database on that target (database per tenant); unset: the target\'s database.'),
    schema: z
      .string().regex(SCHEMA_NAME, 'schema name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$').optional()
      .describe('The tenant\'s schema there (replaces tenancy.schemaTemplate for this tenant).'),
  })
  .strict();

const jwtSchema = z
  .object({
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS)).min(1).default(['HS256'])
      .describe('Algorithms a token may be signed with; `none` is never accepted.'),
    secret: z.string().min(32).optional().meta(SECRET).describe('Shared secret for HS256/384/512 (at least 32 bytes).'),
    publicKey: z.string().optional().describe('PEM public key (SPKI or certificate) for RS*/PS*/ES*/EdDSA.'),
    jwk: z.record(z.string(), z.unknown()).optional().meta(SECRET).describe('A public key as a JWK object.'),
    jwksUrl: z.string().url().optional().describe('JWKS endpoint; keys are fetched and cached.'),
    jwksCacheMaxAgeMs: z.number().int().positive().default(600_000).describe('How long fetched JWKS keys are trusted.'),
    issuer: z.string().optional().describe('Required `iss` claim.'),
    audience: z.string().optional().describe('Required `aud` claim.'),
    clockToleranceSec: z.number().int().min(0).default(30).describe('Leeway for exp/nbf/iat.'),
    requireExp: z
      .boolean().default(true)
      .describe('Refuse tokens without an `exp` claim (a token that never expires is a password that cannot be rotated).'),
    tenantClaim: z.string().min(1).default('tenant_id').describe('Claim naming the tenant (dots walk into objects).'),
    userClaim: z.string().min(1).default('sub').describe('Claim naming the user, for logs.'),
    privateKey: z
      .string().optional().meta(SECRET)
      .describe('PEM private key used only by `pgfence token` to mint tokens for asymmetric algorithms.'),
  })
  .strict()
  .superRefine((jwt, ctx) => {
    // A missing key source is reported by the per-family checks below, which say which key.
    const hmac = jwt.algorithms.filter((a) => a.startsWith('HS'));
    const asym = jwt.algorithms.filter((a) => !a.startsWith('HS'));
    if (hmac.length > 0 && asym.length > 0) {
      ctx.addIssue({
        code: 'custom', path: ['algorithms'],
        message: 'mixing HS* with asymmetric algorithms invites key confusion; pick one family',
      });
    }
    if (hmac.length > 0 && jwt.secret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: `required for ${hmac.join(', ')}` });
    }
    if (asym.length > 0 && jwt.publicKey === undefined && jwt.jwk === undefined && jwt.jwksUrl === undefined) {
      ctx.addIssue({ code: 'custom', path: ['publicKey'], message: `publicKey, jwk or jwksUrl is required for ${asym.join(', ')}` });
    }
  });

const tenantEntrySchema = z
  .object({
    id: z
      .string().regex(TENANT_ID, 'tenant id must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$')
      .describe('Tenant id, as the JWT tenant claim carries it.'),
    status: z
      .enum(['active', 'suspended']).default('active')
      .describe('active, or suspended (refused at connect).'),
    statementTimeoutMs: z
      .number().int().min(0).optional()
      .describe('This tenant\'s statement_timeout (replaces tenancy.statementTimeoutMs); 0 = none.'),
    placement: placementSchema
      .optional()
      .describe('Where the tenant lives: a backend target, and optionally a database and schema of its own there. Unset: the default target, tenancy.schemaTemplate.'),
  })
  .strict();

const registrySchema = z
  .object({
    query: z
      .string().min(1)
      .describe('SQL run on the backend with $1 = tenant id; returns one row with a `status` column (and optionally `statement_timeout_ms`), or none.'),
    cacheTtlMs: z
      .number().int().min(0).default(30_000)
      .describe('How long an answer is cached (an unknown tenant at most 5 s); 0 = ask every time.'),
  })
  .strict();

const controlSchema = z
  .object({
    schema: z
      .string().regex(SCHEMA_NAME, 'schema name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$').default('pgfence')
      .describe('Schema of the registry pgfence owns (`pgfence init` creates it): tables tenants, audit and shared_migrations.'),
    cacheTtlMs: z
      .number().int().min(0).default(30_000)
      .describe('How long the proxy caches a tenant\'s row (an unknown tenant at most 5 s); `pgfence tenant suspend` and `resume` reach running proxies at once (NOTIFY), whatever this is.'),
    provisioner: provisionerSchema('(same host, port and database as backend)').describe('The least-privilege identity that creates, migrates and drops tenants; the proxy never uses it. Unset: the commands run as backend.user, with a warning.'),
  })
  .strict();

const tenancySchema = z
  .object({
    mode: z
      .enum(['schema', 'row', 'both']).default('schema')
      .describe('schema: search_path pinned to the tenant schema; row: tenant GUC only (RLS); both.'),
    schemaTemplate: z
      .string().includes('{tenant}', { message: 'must contain {tenant}' }).default('tenant_{tenant}')
      .describe('Schema name of a tenant; {tenant} is replaced by the tenant id.'),
    tenantGuc: z
      .string().regex(GUC_NAME, 'must be a custom GUC name like app.current_tenant_id')
      .default('app.current_tenant_id')
      .describe('GUC set to the tenant id on every pinned backend.'),
    sharedSchemas: z
      .array(z.string().regex(SCHEMA_NAME, 'schema name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$')).default(['public'])
      .describe('Schemas every tenant may use, appended to search_path.'),
    roleTemplate: z
      .string().includes('{tenant}', { message: 'must contain {tenant}' }).optional()
      .describe('Role the pin switches to (SET ROLE), e.g. pgfence_{tenant}, so the database itself fences each tenant; names as for schemas, not starting with pg_. `pgfence roles` creates the roles. Unset = off.'),
    statementTimeoutMs: z
      .number().int().min(0).default(0)
      .describe('statement_timeout of every tenant\'s sessions, in ms; clients may ask for less, never more, and cannot SET it. 0 = none.'),
    tenants: z.array(tenantEntrySchema).optional().describe('Static tenant list.'),
    registry: registrySchema.optional().describe('Read tenants from a registry table instead.'),
    control: controlSchema
      .optional()
      .describe('Read tenants from the registry pgfence owns, managed with `pgfence init` and `pgfence tenant` (active tenants are served).'),
  })
  .strict()
  .superRefine((t, ctx) => {
    const sources = [t.tenants, t.registry, t.control].filter((source) => source !== undefined).length;
    if (sources === 0) {
      ctx.addIssue({ code: 'custom', message: 'one of tenants, registry or control is required (there is no default tenant)' });
    }
    if (sources > 1) {
      ctx.addIssue({ code: 'custom', message: t.control === undefined ? 'give tenants or registry, not both' : 'give one of tenants, registry or control' });
    }
    if (t.control !== undefined && t.sharedSchemas.includes(t.control.schema)) {
      ctx.addIssue({ code: 'custom', path: ['control', 'schema'], message: 'must not be one of tenancy.sharedSchemas' });
    }
    const schemaNames = t.mode !== 'row';
    const templateOk = SCHEMA_NAME.test(t.schemaTemplate.replaceAll('{tenant}', 'x'));
    if (schemaNames && !templateOk) {
      ctx.addIssue({
        code: 'custom', path: ['schemaTemplate'],
        message: 'must give schema names matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$ once {tenant} is replaced',
      });
    }
    const sampleRole = t.roleTemplate?.replaceAll('{tenant}', 'x');
    const roleTemplateOk = sampleRole === undefined || (ROLE_NAME.test(sampleRole) && !sampleRole.startsWith('pg_'));
    if (!roleTemplateOk) {
      ctx.addIssue({
        code: 'custom', path: ['roleTemplate'],
        message: 'must give role names matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, not starting with pg_ (reserved), once {tenant} is replaced',
      });
    }
    const seen = new Set<string>();
    t.tenants?.forEach(({ id }, i) => {
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: ['tenants', i, 'id'], message: `duplicate tenant id "${id}"` });
      seen.add(id);
      const schema = t.schemaTemplate.replaceAll('{tenant}', id);
      if (schemaNames && templateOk && TENANT_ID.test(id) && !SCHEMA_NAME.test(schema)) {
        ctx.addIssue({
          code: 'custom', path: ['tenants', i, 'id'],
          message: `gives the schema name "${schema}", longer than Postgres's 63 characters`,
        });
      }
      const role = t.roleTemplate?.replaceAll('{tenant}', id);
      if (role !== undefined && roleTemplateOk && TENANT_ID.test(id) && (!ROLE_NAME.test(role) || role.startsWith('pg_'))) {
        ctx.addIssue({
          code: 'custom', path: ['tenants', i, 'id'],
          message: role.startsWith('pg_')
            ? `gives the role name "${role}", and names starting with pg_ are reserved`
            : `gives the role name "${role}", longer than Postgres's 63 characters`,
        });
      }
    });
  });

const poolSchema = z
  .object({
    mode: z
      .enum(['session', 'transaction']).default('session')
      .describe('session: a backend per client for its lifetime; transaction: a backend per transaction, shared by all tenants.'),
    reset: z
      .enum(['auto', 'always']).default('auto')
      .describe('auto: DISCARD ALL when a backend changes tenant or was left dirty; always: on every release.'),
    size: z.number().int().min(1).max(10_000).default(20).describe('Most backends to each backend target.'),
    maxPerTenant: z.number().int().min(0).default(0).describe('Most backends one tenant may hold at once; 0 = no cap.'),
    acquireTimeoutMs: z.number().int().positive().default(10_000).describe('Longest wait for a free backend.'),
    resetTimeoutMs: z.number().int().positive().default(5_000).describe('Longest wait for DISCARD ALL or the pin; else the backend is closed.'),
    idleTimeoutMs: z.number().int().min(0).default(600_000).describe('Close backends idle this long; 0 = never.'),
    maxLifetimeMs: z.number().int().min(0).default(3_600_000).describe('Close backends this old when they come back; 0 = never.'),
    healthCheckAfterIdleMs: z
      .number().int().min(0).default(30_000)
      .describe('A backend idle longer than this answers SELECT 1 before it is handed out.'),
    maxPreparedStatements: z
      .number().int().min(1).default(200)
      .describe('Transaction pooling: most protocol-level prepared statements kept on one backend; the least recently used is closed past it (PgBouncer: max_prepared_statements).'),
    databaseSize: z
      .number().int().min(1).max(10_000).default(5)
      .describe('Database per tenant: most backends to each tenant database (a pool of its own, beside the target\'s).'),
    maxDatabases: z
      .number().int().min(0).max(10_000).default(100)
      .describe('Database per tenant: most tenant databases with a pool at once per target; past it, the pool of an unused database is closed, else the tenant is refused (53300).'),
  })
  .strict();

const guardSchema = z
  .object({
    cacheSize: z.number().int().min(0).default(10_000).describe('Analyses of distinct SQL texts kept in the LRU.'),
  })
  .strict();

/** Refusals a policy may lift for a tenant it trusts; everything else the guard refuses always. */
export const POLICY_SWITCHES = ['dynamic_sql', 'dblink', 'large_objects', 'server_files', 'extensions'] as const;
export type PolicySwitch = (typeof POLICY_SWITCHES)[number];

const FUNCTION_NAME = /^[a-zA-Z_][a-zA-Z0-9_$]{0,62}$/;
const STATEMENT_KIND = /^[A-Z][A-Za-z]*Stmt$/;
const SETTING_NAME = /^[a-zA-Z_][a-zA-Z0-9_$]*(\.[a-zA-Z_][a-zA-Z0-9_$]*)?$/;

const policyRules = {
  allow: z
    .array(z.enum(POLICY_SWITCHES))
    .describe('Refusals lifted: dynamic_sql (PL/pgSQL EXECUTE, query_to_xml...), dblink, large_objects (lo_*), server_files (pg_read_file, COPY to a file or PROGRAM), extensions (CREATE/ALTER EXTENSION). Each one lets SQL the guard cannot check reach the server: the database must then hold the line (tenancy.roleTemplate).'),
  allowedFunctions: z
    .array(z.string().regex(FUNCTION_NAME, 'must be a function name without schema').refine(
      (name) => forbiddenFunction(name.toLowerCase())?.lift !== undefined,
      { message: 'is not a function the guard refuses and a policy may allow (see policy.allow)' },
    ))
    .describe('Functions lifted one by one, where a switch of `allow` would lift a whole family (e.g. lo_get without the rest of large_objects).'),
  allowedStatements: z
    .array(z.string().refine((kind) => LIFTABLE_STATEMENTS.has(kind), { message: `must be one of ${[...LIFTABLE_STATEMENTS.keys()].join(', ')}` }))
    .describe('Statement kinds lifted one by one, by parse node name (CreateExtensionStmt without ALTER EXTENSION).'),
  readOnlySchemas: z
    .array(z.string().regex(SCHEMA_NAME, 'schema name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$'))
    .describe('Shared schemas tenants may read but not change: a statement that names one of them as the target of a write or DDL is refused. Unqualified writes that resolve into it are for the database to refuse (tenancy.roleTemplate grants SELECT only there).'),
  deniedFunctions: z
    .array(z.string().regex(FUNCTION_NAME, 'must be a function name without schema'))
    .describe('Functions refused whatever schema qualifies them (case-insensitive), e.g. pg_sleep.'),
  deniedStatements: z
    .array(z.string().regex(STATEMENT_KIND, 'must be a Postgres parse node name such as TruncateStmt'))
    .describe('Statement kinds refused, by their Postgres parse node name (TruncateStmt, DropStmt, CreateFunctionStmt, ...), also inside function bodies, PREPARE and EXPLAIN.'),
  protectedSettings: z
    .array(z.string().regex(SETTING_NAME, 'must be a setting name'))
    .describe('Settings the client may not change (SET, RESET, set_config, a function\'s SET clause), besides the pin, which is always protected.'),
};

const policyOverride = z.object(policyRules).partial().strict();

/** The keys with their defaults: a tenant override leaves out what it does not replace. */
const policyDefaults = Object.fromEntries(
  Object.entries(policyRules).map(([key, rule]) => [key, rule.default([])]),
) as { [K in keyof typeof policyRules]: z.ZodDefault<(typeof policyRules)[K]> };

const policySchema = z
  .object({
    ...policyDefaults,
    tenants: z
      .record(z.string().regex(TENANT_ID, 'tenant id must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$'), policyOverride).default({})
      .describe('Per-tenant overrides: each key given replaces the default for that tenant.'),
  })
  .strict();

const logSchema = z
  .object({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
      .describe('Least severe log level written (JSON lines on stdout).'),
  })
  .strict();

const adminSchema = z
  .object({
    enabled: z
      .boolean().default(false)
      .describe('Serve GET /metrics (Prometheus), /healthz and /readyz over HTTP.'),
    host: z
      .string().min(1).default('127.0.0.1')
      .describe('Address of the admin endpoint; it has no authentication, so keep it on a private interface.'),
    port: z.number().int().min(0).max(65535).default(9432).describe('TCP port of the admin endpoint; 0 picks a free one.'),
    readyProbeCacheMs: z
      .number().int().min(0).default(1_000)
      .describe('/readyz opens a server connection to check the backend and reuses its answer this long; 0 = no backend check (ready = listening and not draining).'),
    consoleClaim: z
      .string().min(1).default('pgfence_admin')
      .describe('A JWT whose claim of this name is true may open the admin console: psql to the database pgfence.'),
  })
  .strict();

const workersSchema = z
  .union([z.number().int().min(1).max(MAX_WORKERS), z.literal('auto')])
  .default(1)
  .describe(`Processes serving the one listening port (node:cluster); auto = one per core (at most pool.size). pool.size and pool.maxPerTenant are shared out between them. 1 = one process, no cluster. At most ${MAX_WORKERS}.`);

const peerSchema = z
  .object({
    id: z.number().int().min(1).max(MAX_PEER_ID).describe('That instance\'s peerId.'),
    host: z.string().min(1).describe('Host of that instance\'s listening port.'),
    port: z.number().int().min(1).max(65535).default(6432).describe('Its listening port.'),
  })
  .strict();

export const configSchema = z
  .object({
    workers: workersSchema,
    peerId: z
      .number().int().min(0).max(MAX_PEER_ID).default(0)
      .describe(`This instance's id among peered pgfence instances (1..${MAX_PEER_ID}, unique; PgBouncer's peer_id), written into every cancel key it issues. 0 = no peering.`),
    peers: z
      .array(peerSchema).default([])
      .describe('The other pgfence instances behind the same load balancer: a CancelRequest for a key another instance issued is sent on to it (PgBouncer\'s [peers]). The entry with this instance\'s own peerId is skipped, so every instance may share one list.'),
    listen: listenSchema.default(() => listenSchema.parse({})),
    backend: backendSchema.default(() => backendSchema.parse({})).describe('The backend target `default`.'),
    backends: z
      .record(z.string().regex(TARGET_NAME, 'target name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$'), backendTargetSchema)
      .optional()
      .describe('More backend targets by name (each its own server or database, credentials, TLS and pool limits), which tenants are placed on; `backend` stays the target `default`.'),
    jwt: jwtSchema,
    tenancy: tenancySchema,
    pool: poolSchema.default(() => poolSchema.parse({})),
    guard: guardSchema.default(() => guardSchema.parse({})),
    policy: policySchema.default(() => policySchema.parse({})),
    log: logSchema.default(() => logSchema.parse({})),
    admin: adminSchema.default(() => adminSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const shared = new Set(c.tenancy.sharedSchemas);
    const check = (schemas: readonly string[] | undefined, path: Array<string | number>): void =>
      schemas?.forEach((schema, i) => {
        if (!shared.has(schema)) ctx.addIssue({ code: 'custom', path: [...path, i], message: `"${schema}" is not one of tenancy.sharedSchemas` });
      });
    check(c.policy.readOnlySchemas, ['policy', 'readOnlySchemas']);
    if (c.backends?.['default'] !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['backends', 'default'], message: 'the target `default` is the `backend` key; give this target another name' });
    }
    c.tenancy.tenants?.forEach((t, i) => {
      const target = t.placement?.target;
      if (target !== undefined && target !== 'default' && c.backends?.[target] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tenancy', 'tenants', i, 'placement', 'target'], message: `"${target}" is not a backend target (default, or a key of backends)` });
      }
    });
    for (const [id, override] of Object.entries(c.policy.tenants)) check(override.readOnlySchemas, ['policy', 'tenants', id, 'readOnlySchemas']);
    // Each worker needs a share of at least one backend (and of each tenant's cap); `auto` is bounded at start.
    if (typeof c.workers === 'number' && c.workers > 1 && c.workers > c.pool.size) {
      ctx.addIssue({ code: 'custom', path: ['workers'], message: `${c.workers} workers cannot share pool.size ${c.pool.size}: each worker needs at least one backend` });
    }
    if (typeof c.workers === 'number' && c.workers > 1 && c.pool.maxPerTenant > 0 && c.workers > c.pool.maxPerTenant) {
      ctx.addIssue({ code: 'custom', path: ['workers'], message: `${c.workers} workers cannot share pool.maxPerTenant ${c.pool.maxPerTenant}: each worker needs a share of at least one backend per tenant` });
    }
    if (typeof c.workers === 'number' && c.workers > 1) {
      for (const [name, target] of Object.entries(c.backends ?? {})) {
        const size = target.pool?.size;
        if (size !== undefined && c.workers > size) {
          ctx.addIssue({ code: 'custom', path: ['workers'], message: `${c.workers} workers cannot share backends.${name}.pool.size ${size}: each worker needs at least one backend` });
        }
        const cap = target.pool?.maxPerTenant;
        if (cap !== undefined && cap > 0 && c.workers > cap) {
          ctx.addIssue({ code: 'custom', path: ['workers'], message: `${c.workers} workers cannot share backends.${name}.pool.maxPerTenant ${cap}: each worker needs a share of at least one backend per tenant` });
        }
      }
    }
    if (c.peers.length > 0 && c.peerId === 0) {
      ctx.addIssue({ code: 'custom', path: ['peerId'], message: 'required (1..16383) when peers are listed' });
    }
    const peerIds = new Set<number>();
    c.peers.forEach((peer, i) => {
      if (peerIds.has(peer.id)) ctx.addIssue({ code: 'custom', path: ['peers', i, 'id'], message: `duplicate peer id ${peer.id}` });
      peerIds.add(peer.id);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type JwtConfig = Config['jwt'];
export type TenancyConfig = Config['tenancy'];
export type BackendConfig = Config['backend'];
export type BackendTargetConfig = NonNullable<Config['backends']>[string];
export type PlacementConfig = NonNullable<NonNullable<TenancyConfig['tenants']>[number]['placement']>;
export type PolicyConfig = Config['policy'];
export type PolicyRules = Omit<PolicyConfig, 'tenants'>;
export type PoolConfig = Config['pool'];
export type ListenConfig = Config['listen'];
export type AdminConfig = Config['admin'];
export type ControlConfig = NonNullable<TenancyConfig['control']>;
export type PeerConfig = Config['peers'][number];
