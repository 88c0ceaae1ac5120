import { describe, expect, it } from 'vitest';
import { getPgAuthUsers } from '../support/db.js';
import { startTestProxy } from '../support/proxy.js';

/** pgfence logs into the backend with whatever method pg_hba asks for: SCRAM, md5 or trust. */
const users = getPgAuthUsers();

async function currentUserThroughProxy(backend: { user: string; password?: string }): Promise<string> {
  // The seeded test database of one proxy, reached by a second pgfence logging in as `backend.user`.
  const seeded = await startTestProxy();
  const url = new URL(seeded.directUrl);
  const proxy = await startTestProxy({
    backend: { host: url.hostname, port: Number(url.port), database: url.pathname.slice(1), user: backend.user, password: backend.password },
  });
  const closeBoth = async (): Promise<void> => {
    await proxy.close();
    await seeded.close();
  };
  try {
    const client = await proxy.connect('acme');
    try {
      const r = await client.query('SELECT current_user AS who');
      return r.rows[0].who as string;
    } finally {
      await client.end();
    }
  } finally {
    await closeBoth();
  }
}

describe('backend authentication methods', () => {
  it('SCRAM-SHA-256', async () => {
    expect(await currentUserThroughProxy(users.scram)).toBe(users.scram.user);
  });

  it.skipIf(users.md5 === undefined)('md5', async () => {
    const md5 = users.md5 as { user: string; password: string };
    expect(await currentUserThroughProxy(md5)).toBe(md5.user);
  });

  it.skipIf(users.trust === undefined)('trust', async () => {
    const trust = users.trust as { user: string };
    expect(await currentUserThroughProxy({ user: trust.user })).toBe(trust.user);
  });

  it('a wrong backend password fails the client with 08006, not a hang', async () => {
    const proxy = await startTestProxy();
    const url = new URL(proxy.directUrl);
    await proxy.close();
    const broken = await startTestProxy({
      backend: { host: url.hostname, port: Number(url.port), database: 'postgres', user: users.scram.user, password: 'wrong' },
    });
    try {
      const error = await broken.connect('acme').then(
        () => null,
        (e: { code?: string; message: string }) => e,
      );
      expect(error?.code).toBe('08006');
    } finally {
      await broken.close();
    }
  });
});
