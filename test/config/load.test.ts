import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.js';

const SECRET = 'k'.repeat(40);
const MINIMAL = `
jwt:
  secret: ${SECRET}
tenancy:
  tenants:
    - id: acme
`;

/** The ConfigError that parsing `text` throws. */
function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parseConfig(text, 'pgfence.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** The problem lines of the error message, without the heading. */
function linesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  return problemsOf(text, env).message.split('\n').slice(1).map((l) => l.trim());
}

describe('parseConfig', () => {
  it('fills every default around a minimal file', () => {
    const config = parseConfig(MINIMAL, 'pgfence.yaml', {});
    expect(config.listen).toEqual({
      host: '127.0.0.1', port: 6432, allowPlaintextJwt: false, startupTimeoutMs: 10_000, maxMessageBytes: 256 * 1024 * 1024, requireTls: false, shutdownTimeoutMs: 30_000,
      authThrottle: { enabled: true, freeFailures: 5, windowMs: 60_000, delayMs: 250, maxDelayMs: 5_000, maxAddresses: 10_000 },
    });
    expect(config.backend).toEqual({ connectTimeoutMs: 5_000, sslmode: 'disable' });
    expect(config.jwt).toMatchObject({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'tenant_id', userClaim: 'sub', clockToleranceSec: 30 });
    expect(config.tenancy).toEqual({
      mode: 'schema',
      schemaTemplate: 'tenant_{tenant}',
      tenantGuc: 'app.current_tenant_id',
      sharedSchemas: ['public'],
      statementTimeoutMs: 0,
      tenants: [{ id: 'acme', status: 'active' }],
    });
    expect(config.pool).toMatchObject({ mode: 'session', reset: 'auto', size: 20, maxPerTenant: 0 });
    expect(config.guard).toEqual({ cacheSize: 10_000 });
    expect(config.log).toEqual({ level: 'info' });
    expect(config.admin).toEqual({ enabled: false, host: '127.0.0.1', port: 9432, readyProbeCacheMs: 1_000, consoleClaim: 'pgfence_admin' });
  });

  it('names the file, the line and the key of an unknown key, and suggests the near one', () => {
    const error = problemsOf(`listen:\n  prot: 5432\n${MINIMAL}`);
    expect(error.message).toBe('invalid configuration in pgfence.yaml (1 problem):\n  pgfence.yaml:2: listen.prot: unknown key (did you mean "port"?)');
    expect(error.source).toBe('pgfence.yaml');
    expect(error.problems).toEqual([{ key: 'listen.prot', message: 'unknown key (did you mean "port"?)', line: 2 }]);
    expect(linesOf(`lsten: {}\nbogus: 1\n${MINIMAL}`)).toEqual([
      'pgfence.yaml:1: lsten: unknown key (did you mean "listen"?)',
      'pgfence.yaml:2: bogus: unknown key',
    ]);
  });

  it('says what a key expects and what it got', () => {
    expect(linesOf(`${MINIMAL}pool:\n  size: ten\n  mode: sesion\n  maxPerTenant: -1\nlisten:\n  port: 70000\n  allowPlaintextJwt: "yes"\n`)).toEqual([
      'pgfence.yaml:8: pool.size: expected an integer between 1 and 10000, got "ten"',
      'pgfence.yaml:9: pool.mode: expected one of "session", "transaction", got "sesion"',
      'pgfence.yaml:10: pool.maxPerTenant: expected an integer >= 0, got -1',
      'pgfence.yaml:12: listen.port: expected an integer between 0 and 65535, got 70000',
      'pgfence.yaml:13: listen.allowPlaintextJwt: expected true or false, got "yes"',
    ]);
    expect(linesOf(`${MINIMAL}pool: 5\nlog: []\nguard:\n  cacheSize: 1.5\n`)).toEqual([
      'pgfence.yaml:7: pool: expected a mapping, got 5',
      'pgfence.yaml:8: log: expected a mapping, got a list',
      'pgfence.yaml:10: guard.cacheSize: expected an integer >= 0, got 1.5',
    ]);
    expect(linesOf(`${MINIMAL}backend:\n  user: 42\n`)).toEqual([
      'pgfence.yaml:8: backend.user: expected a string, got an integer (quote the value in YAML)',
    ]);
  });

  it('requires jwt and tenancy, and lists every problem at once', () => {
    expect(linesOf('')).toEqual(['pgfence.yaml: jwt: required', 'pgfence.yaml: tenancy: required']);
    expect(linesOf('# only a comment\n')).toEqual(['pgfence.yaml: jwt: required', 'pgfence.yaml: tenancy: required']);
    expect(linesOf('just a string')).toEqual(['pgfence.yaml: (root): expected a mapping, got "just a string"']);
    const error = problemsOf(`listen: {prot: 1}\npool: {size: 0}\njwt: {}\ntenancy: {}\n`);
    expect(error.problems.map((p) => p.key)).toEqual(['listen.prot', 'pool.size', 'jwt.secret', 'tenancy']);
  });

  it('asks for the key source the chosen algorithms need', () => {
    expect(linesOf(`jwt: {}\ntenancy: {tenants: [{id: acme}]}\n`)).toEqual(['pgfence.yaml:1: jwt.secret: required for HS256']);
    expect(linesOf(`jwt: {algorithms: [HS256, HS512], publicKey: x}\ntenancy: {tenants: [{id: acme}]}\n`)).toEqual([
      'pgfence.yaml:1: jwt.secret: required for HS256, HS512',
    ]);
    expect(linesOf(`jwt: {algorithms: [RS256, EdDSA]}\ntenancy: {tenants: [{id: acme}]}\n`)).toEqual([
      'pgfence.yaml:1: jwt.publicKey: publicKey, jwk or jwksUrl is required for RS256, EdDSA',
    ]);
    expect(parseConfig(`jwt: {algorithms: [ES256], jwksUrl: "https://issuer.example/jwks"}\ntenancy: {tenants: [{id: a}]}\n`, 'f', {}).jwt.jwksUrl).toBe(
      'https://issuer.example/jwks',
    );
    expect(linesOf(`jwt: {algorithms: [ES256], jwksUrl: "not a url"}\ntenancy: {tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:1: jwt.jwksUrl: expected a URL',
    ]);
    expect(linesOf(`jwt: {algorithms: [none], secret: ${SECRET}}\ntenancy: {tenants: [{id: a}]}\n`)[0]).toMatch(
      /^pgfence\.yaml:1: jwt\.algorithms\[0\]: expected one of "HS256", .*"EdDSA", got "none"$/,
    );
    expect(linesOf(`jwt: {algorithms: [], secret: ${SECRET}}\ntenancy: {tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:1: jwt.algorithms: must list at least 1 item',
    ]);
  });

  it('refuses HS* mixed with asymmetric algorithms', () => {
    expect(linesOf(`jwt:\n  algorithms: [HS256, RS256]\n  secret: ${SECRET}\n  publicKey: pem\ntenancy: {tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:2: jwt.algorithms: mixing HS* with asymmetric algorithms invites key confusion; pick one family',
    ]);
  });

  it('checks tenant ids, schema names and the GUC name', () => {
    const text = `jwt: {secret: ${SECRET}}
tenancy:
  tenantGuc: current_tenant
  sharedSchemas: [public, "pub lic"]
  tenants:
    - id: acme
    - id: "bad id"
    - id: 1acme
    - {id: ok, status: deleted}
`;
    expect(linesOf(text)).toEqual([
      'pgfence.yaml:3: tenancy.tenantGuc: must be a custom GUC name like app.current_tenant_id, got "current_tenant"',
      'pgfence.yaml:4: tenancy.sharedSchemas[1]: schema name must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, got "pub lic"',
      'pgfence.yaml:7: tenancy.tenants[1].id: tenant id must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, got "bad id"',
      'pgfence.yaml:8: tenancy.tenants[2].id: tenant id must match ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, got "1acme"',
      'pgfence.yaml:9: tenancy.tenants[3].status: expected one of "active", "suspended", got "deleted"',
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy:\n  tenants:\n    - id: acme\n    - id: globex\n    - id: acme\n`)).toEqual([
      'pgfence.yaml:6: tenancy.tenants[2].id: duplicate tenant id "acme"',
    ]);
  });

  it('checks the schema template against the names it makes', () => {
    const long = 'x'.repeat(60);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy:\n  schemaTemplate: "tenant_{tenant}"\n  tenants: [{id: ${long}}]\n`)).toEqual([
      `pgfence.yaml:4: tenancy.tenants[0].id: gives the schema name "tenant_${long}", longer than Postgres's 63 characters`,
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {schemaTemplate: "tenant", tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:2: tenancy.schemaTemplate: must contain {tenant}, got "tenant"',
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {schemaTemplate: "tenant {tenant}", tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:2: tenancy.schemaTemplate: must give schema names matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$ once {tenant} is replaced',
    ]);
    // Row mode has no schemas, so the template does not matter there.
    expect(parseConfig(`jwt: {secret: ${SECRET}}\ntenancy: {mode: row, tenants: [{id: ${long}}]}\n`, 'f', {}).tenancy.mode).toBe('row');
  });

  it('checks the role template against the role names it makes', () => {
    const long = 'x'.repeat(56);
    expect(parseConfig(`jwt: {secret: ${SECRET}}\ntenancy: {roleTemplate: "pgfence_{tenant}", tenants: [{id: acme}]}\n`, 'f', {}).tenancy.roleTemplate).toBe('pgfence_{tenant}');
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy:\n  roleTemplate: "pgfence_{tenant}"\n  tenants: [{id: ${long}}]\n`)).toEqual([
      `pgfence.yaml:4: tenancy.tenants[0].id: gives the role name "pgfence_${long}", longer than Postgres's 63 characters`,
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {roleTemplate: "{tenant}", tenants: [{id: pg_acme}]}\n`)).toEqual([
      'pgfence.yaml:2: tenancy.tenants[0].id: gives the role name "pg_acme", and names starting with pg_ are reserved',
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {roleTemplate: "pgfence", tenants: [{id: a}]}\n`)).toEqual([
      'pgfence.yaml:2: tenancy.roleTemplate: must contain {tenant}, got "pgfence"',
    ]);
    for (const template of ['role {tenant}', 'pg_{tenant}', 'a"{tenant}']) {
      expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {roleTemplate: '${template}', tenants: [{id: a}]}\n`)).toEqual([
        'pgfence.yaml:2: tenancy.roleTemplate: must give role names matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, not starting with pg_ (reserved), once {tenant} is replaced',
      ]);
    }
  });

  it('wants tenants or a registry, not both and not neither', () => {
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {mode: schema}\n`)).toEqual([
      'pgfence.yaml:2: tenancy: one of tenants, registry or control is required (there is no default tenant)',
    ]);
    expect(linesOf(`jwt: {secret: ${SECRET}}\ntenancy: {tenants: [], registry: {query: "SELECT 1"}}\n`)).toEqual([
      'pgfence.yaml:2: tenancy: give tenants or registry, not both',
    ]);
    const config = parseConfig(`jwt: {secret: ${SECRET}}\ntenancy: {registry: {query: "SELECT status FROM t WHERE id = $1"}}\n`, 'f', {});
    expect(config.tenancy.registry).toEqual({ query: 'SELECT status FROM t WHERE id = $1', cacheTtlMs: 30_000 });
  });

  it('names the line of a YAML syntax error', () => {
    expect(linesOf(`jwt:\n  secret: x\n  algorithms: [HS256\ntenancy: {}\n`)).toEqual([
      'pgfence.yaml:4: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(linesOf(`jwt: {}\njwt: {}\n`)).toEqual(['pgfence.yaml:2: YAML syntax error: Map keys must be unique']);
    expect(linesOf(`a: 1\n---\nb: 2\n`)[0]).toMatch(/^pgfence\.yaml:2: YAML syntax error: /);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 6 }, (_, i) => {
      const prev = String.fromCharCode(97 + i);
      return `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${prev}`).join(', ')}]`;
    })].join('\n');
    expect(linesOf(bomb)[0]).toMatch(/^pgfence\.yaml: YAML error: Excessive alias count/);
  });
});

describe('environment substitution', () => {
  const withEnv = (extra: string): string => `jwt:\n  secret: \${JWT_SECRET}\ntenancy: {tenants: [{id: acme}]}\n${extra}`;
  const env = { JWT_SECRET: SECRET };

  it('replaces ${VAR} and ${VAR:-default} inside string values', () => {
    const config = parseConfig(withEnv('backend:\n  host: db-${REGION}.internal\n  user: ${DB_USER:-pgfence}\n  database: ${DB_NAME:-app}\n'), 'f', {
      ...env, REGION: 'eu', DB_NAME: '',
    });
    expect(config.jwt.secret).toBe(SECRET);
    // The default applies when the variable is unset or empty, as in the shell.
    expect(config.backend).toMatchObject({ host: 'db-eu.internal', user: 'pgfence', database: 'app' });
  });

  it('types a substituted value where the schema wants a number or a boolean', () => {
    const text = withEnv('listen:\n  port: ${PORT:-6543}\n  allowPlaintextJwt: ${PLAIN:-false}\npool: {size: "${POOL}"}\n');
    const config = parseConfig(text, 'f', { ...env, PLAIN: 'TRUE', POOL: ' 7 ' });
    expect(config.listen.port).toBe(6543);
    expect(config.listen.allowPlaintextJwt).toBe(true);
    expect(config.pool.size).toBe(7);
    expect(linesOf(text, { ...env, POOL: 'seven' })).toEqual(['pgfence.yaml:7: pool.size: expected an integer between 1 and 10000, got "seven"']);
  });

  it('keeps an environment value as plain text, never YAML', () => {
    const config = parseConfig(withEnv('backend:\n  password: ${PW}\n'), 'f', { ...env, PW: "a: [b, 'c'] # d\n- e" });
    expect(config.backend.password).toBe("a: [b, 'c'] # d\n- e");
    // A password that looks like a number stays a string.
    expect(parseConfig(withEnv('backend:\n  password: ${PW}\n'), 'f', { ...env, PW: '12345' }).backend.password).toBe('12345');
  });

  it('never substitutes in keys', () => {
    expect(linesOf(withEnv('${KEY}: 1\n'), { ...env, KEY: 'pool' })).toEqual(['pgfence.yaml:4: ${KEY}: unknown key']);
  });

  it('names the key and the variable of an unset one, and no other value', () => {
    const error = problemsOf(withEnv('backend:\n  password: ${DB_PASSWORD}\n  user: ${DB_USER}\n'), { JWT_SECRET: SECRET, DB_USER: 'svc-user' });
    expect(error.problems).toEqual([
      { key: 'backend.password', line: 5, message: 'environment variable DB_PASSWORD is not set (use ${DB_PASSWORD:-default} to give a default)' },
    ]);
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain('svc-user');
    expect(linesOf(withEnv(''), {})).toEqual([
      'pgfence.yaml:2: jwt.secret: environment variable JWT_SECRET is not set (use ${JWT_SECRET:-default} to give a default)',
    ]);
  });

  it('refuses a malformed reference instead of passing it on as text', () => {
    for (const bad of ['${DB-PASSWORD}', '${DB_PASSWORD', '${}', '${A:-${B}}', '${1X}']) {
      expect(linesOf(withEnv(`backend:\n  password: "pre${bad}"\n`), env)).toEqual([
        'pgfence.yaml:5: backend.password: malformed environment reference: write ${VAR} or ${VAR:-default} (no nesting)',
      ]);
    }
    expect(parseConfig(withEnv('backend:\n  password: "$5 and $HOME {x}"\n'), 'f', env).backend.password).toBe('$5 and $HOME {x}');
  });
});

describe('secrets in errors', () => {
  const tenancy = 'tenancy: {tenants: [{id: acme}]}\n';

  it('says a secret is too short without repeating it', () => {
    const secret = 'short-but-secret-value';
    const error = problemsOf(`jwt:\n  secret: ${secret}\n${tenancy}`);
    expect(error.message).toContain('pgfence.yaml:2: jwt.secret: must be at least 32 characters');
    expect(error.message).not.toContain(secret);
  });

  it('gives only the kind of a secret value of the wrong type', () => {
    expect(linesOf(`jwt:\n  secret: 123456789\n${tenancy}backend: {password: [hunter2]}\n`)).toEqual([
      'pgfence.yaml:2: jwt.secret: expected a string, got an integer (quote the value in YAML)',
      'pgfence.yaml:4: backend.password: expected a string, got a list',
    ]);
  });

  it('does not quote a bad backend URL, which carries the password', () => {
    const cases: Array<[string, string]> = [
      ['postgres://svc:hunter2secret@db:5432/app?sslmode=require', 'query parameters (sslmode) are not supported; use the backend.* keys, and percent-encode ? and # in a password'],
      ['postgres://svc:hunter2?secret@db/app', 'not a valid URL (expected postgres://user:password@host:port/database)'],
      ['postgres://svc:hunter2#secret@db/app', 'not a valid URL (expected postgres://user:password@host:port/database)'],
      ['postgres://svc:pass@db/app#hunter2secret', 'unexpected "#"; percent-encode it as %23 in a password'],
      ['mysql://svc:hunter2secret@db/app', 'expected a postgres:// or postgresql:// URL'],
      ['postgres://svc:hunter2%ZZsecret@db/app', 'malformed percent-encoding'],
      ['hunter2secret', 'not a valid URL (expected postgres://user:password@host:port/database)'],
    ];
    for (const [url, message] of cases) {
      const error = problemsOf(`jwt: {secret: ${SECRET}}\n${tenancy}backend:\n  url: "${url}"\n`);
      expect(error.problems).toEqual([{ key: 'backend.url', line: 4, message }]);
      expect(error.message).not.toContain('hunter2');
    }
  });

  it('does not echo an unexpected query parameter name, which may be part of a password', () => {
    const error = problemsOf(`jwt: {secret: ${SECRET}}\n${tenancy}backend: {url: "postgres://svc@db/app?hunter2=1"}\n`);
    expect(error.message).toContain('backend.url: query parameters are not supported');
    expect(error.message).not.toContain('hunter2');
  });

  it('does not echo a JWK or a private key', () => {
    const error = problemsOf(`jwt: {algorithms: [EdDSA], jwk: "d-is-private", privateKey: 42}\n${tenancy}`);
    expect(error.problems.map((p) => `${p.key}: ${p.message}`)).toEqual([
      'jwt.jwk: expected a mapping, got a string',
      'jwt.privateKey: expected a string, got an integer (quote the value in YAML)',
    ]);
    expect(error.message).not.toContain('d-is-private');
  });
});

describe('loadConfigFile', () => {
  it('reads a file, and names it in errors', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-config-'));
    try {
      const file = path.join(dir, 'pgfence.yaml');
      await writeFile(file, MINIMAL);
      expect((await loadConfigFile(file, {})).tenancy.tenants).toEqual([{ id: 'acme', status: 'active' }]);
      await writeFile(file, `${MINIMAL}pool: {size: 0}\n`);
      await expect(loadConfigFile(file, {})).rejects.toThrow(`${file}:7: pool.size: expected an integer between 1 and 10000, got 0`);
      const missing = path.join(dir, 'missing.yaml');
      await expect(loadConfigFile(missing, {})).rejects.toThrow(`invalid configuration in ${missing} (1 problem):\n  ${missing}: cannot read the file (ENOENT)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
