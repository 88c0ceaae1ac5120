import { describe, expect, it } from 'vitest';
import { describeConfig } from '../../src/config/load.js';

describe('describeConfig', () => {
  const text = describeConfig();

  it('lists every key with its type, default and description from the schema', () => {
    expect(text).toContain('  listen.port: integer 0..65535, default 6432\n      TCP port; 0 picks a free one.');
    expect(text).toContain('  pool.mode: "session" | "transaction", default "session"');
    expect(text).toContain('  pool.acquireTimeoutMs: integer > 0, default 10000');
    expect(text).toContain('  tenancy.sharedSchemas: list of string matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, default ["public"]');
    expect(text).toContain('    tenancy.tenants[].id: string matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, required');
    expect(text).toContain('    tenancy.registry.query: string, required');
    expect(text).toContain('  log.level: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent", default "info"');
    expect(text).toMatch(/^jwt \(required\)$/m);
    expect(text).toMatch(/^tenancy \(required\)$/m);
  });

  it('marks the secret keys', () => {
    const secret = text.split('\n').filter((l) => l.includes(', secret')).map((l) => l.trim().split(':')[0]);
    expect(secret).toEqual(['listen.tls.key', 'backend.url', 'backend.password', 'jwt.secret', 'jwt.jwk', 'jwt.privateKey', 'tenancy.control.provisioner.password']);
  });

  it('gives every key a description', () => {
    const lines = text.split('\n');
    const keyLines = lines.filter((line) => /^\s*[a-zA-Z]+(\.[a-zA-Z[\]]+)+: /.test(line));
    expect(keyLines.length).toBeGreaterThan(40);
    const undocumented = keyLines.filter((line) => !/^\s{4,}\S/.test(lines[lines.indexOf(line) + 1] ?? ''));
    expect(undocumented).toEqual([]);
  });
});
