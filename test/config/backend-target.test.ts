import { describe, expect, it } from 'vitest';
import { ConfigError, resolveBackendTarget } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

const backend = (input: Record<string, unknown>) => configSchema.shape.backend.parse(input);

describe('resolveBackendTarget', () => {
  it('defaults to postgres@127.0.0.1:5432/postgres without a password', () => {
    expect(resolveBackendTarget(backend({}))).toEqual({
      host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres', password: undefined, sslmode: 'disable', sslRootCert: undefined,
    });
  });

  it('reads postgres:// and postgresql:// URLs, percent-decoding user, password and database', () => {
    expect(resolveBackendTarget(backend({ url: 'postgres://svc%40corp:p%40ss%3Aw%2Fo%23rd@db.internal:6543/my%20app' }))).toEqual({
      host: 'db.internal', port: 6543, database: 'my app', user: 'svc@corp', password: 'p@ss:w/o#rd', sslmode: 'disable', sslRootCert: undefined,
    });
    expect(resolveBackendTarget(backend({ url: 'postgresql://svc@db' }))).toEqual({
      host: 'db', port: 5432, database: 'postgres', user: 'svc', password: undefined, sslmode: 'disable', sslRootCert: undefined,
    });
    // An unencoded @ in the password still works: the last @ ends the user info.
    expect(resolveBackendTarget(backend({ url: 'postgres://svc:p@ss@db/app' })).password).toBe('p@ss');
    expect(resolveBackendTarget(backend({ url: 'postgres://[::1]:5433/app' }))).toMatchObject({ host: '::1', port: 5433 });
    expect(resolveBackendTarget(backend({ url: 'postgres:///app' }))).toMatchObject({ host: '127.0.0.1', database: 'app' });
  });

  it('lets explicit keys override the URL', () => {
    const target = resolveBackendTarget(
      backend({ url: 'postgres://svc:url-pass@db:6000/app', host: 'replica', port: 7000, database: 'other', user: 'admin', password: 'key-pass' }),
    );
    expect(target).toEqual({ host: 'replica', port: 7000, database: 'other', user: 'admin', password: 'key-pass', sslmode: 'disable', sslRootCert: undefined });
    expect(resolveBackendTarget(backend({ url: 'postgres://svc:url-pass@db/app', user: 'admin' }))).toMatchObject({ user: 'admin', password: 'url-pass' });
  });

  it('refuses a URL the schema would refuse, without quoting it', () => {
    for (const url of ['postgres://svc:hunter2@db/app?sslmode=require', 'http://svc:hunter2@db/app', 'postgres://svc:hunter2@db:0/app', 'postgres://svc:hunter2@db/a/b']) {
      expect(() => backend({ url })).toThrow();
      let error: unknown;
      try {
        resolveBackendTarget({ url, connectTimeoutMs: 1, sslmode: 'disable' });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems[0]?.key).toBe('backend.url');
      expect((error as ConfigError).message).not.toContain('hunter2');
    }
  });
});
