import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { CONSOLE_COMMANDS } from '../../src/admin/console-commands.js';
import { type ConsoleContext, runConsoleCommand } from '../../src/admin/console.js';
import { ConfigError } from '../../src/config/errors.js';

// ---------------------------------------------------------------------------------------------
// A small decoder for what the console returns: one backend message per Buffer.

interface Field {
  name: string;
  tableOid: number;
  column: number;
  typeOid: number;
  typeLength: number;
  typeModifier: number;
  format: number;
}

type Message =
  | { type: 'T'; fields: Field[] }
  | { type: 'D'; values: (string | null)[] }
  | { type: 'C'; tag: string }
  | { type: 'E' | 'N'; fields: Record<string, string> }
  | { type: 'I' };

function cstring(buf: Buffer, at: number): [string, number] {
  const end = buf.indexOf(0, at);
  if (end < 0) throw new Error('unterminated string');
  return [buf.toString('utf8', at, end), end + 1];
}

function decode(buf: Buffer): Message {
  const type = String.fromCharCode(buf[0] as number);
  expect(buf.readInt32BE(1), `length of ${type}`).toBe(buf.length - 1);
  let at = 5;
  switch (type) {
    case 'T': {
      const fields: Field[] = [];
      const count = buf.readInt16BE(at);
      at += 2;
      for (let i = 0; i < count; i++) {
        const [name, next] = cstring(buf, at);
        at = next;
        fields.push({
          name,
          tableOid: buf.readInt32BE(at),
          column: buf.readInt16BE(at + 4),
          typeOid: buf.readInt32BE(at + 6),
          typeLength: buf.readInt16BE(at + 10),
          typeModifier: buf.readInt32BE(at + 12),
          format: buf.readInt16BE(at + 16),
        });
        at += 18;
      }
      expect(at).toBe(buf.length);
      return { type, fields };
    }
    case 'D': {
      const values: (string | null)[] = [];
      const count = buf.readInt16BE(at);
      at += 2;
      for (let i = 0; i < count; i++) {
        const length = buf.readInt32BE(at);
        at += 4;
        if (length === -1) values.push(null);
        else {
          values.push(buf.toString('utf8', at, at + length));
          at += length;
        }
      }
      expect(at).toBe(buf.length);
      return { type, values };
    }
    case 'C': {
      const [tag, next] = cstring(buf, at);
      expect(next).toBe(buf.length);
      return { type, tag };
    }
    case 'E':
    case 'N': {
      const fields: Record<string, string> = {};
      while (buf[at] !== 0) {
        const code = String.fromCharCode(buf[at] as number);
        const [value, next] = cstring(buf, at + 1);
        fields[code] = value;
        at = next;
      }
      expect(at + 1).toBe(buf.length);
      return { type, fields };
    }
    case 'I':
      expect(buf.length).toBe(5);
      return { type };
    default:
      throw new Error(`unexpected message type ${type}`);
  }
}

interface ResultSet {
  columns: string[];
  rows: (string | null)[][];
  tag: string;
}

/** A SHOW answer: RowDescription (all text), DataRows, CommandComplete, nothing else. */
function resultSet(messages: Message[]): ResultSet {
  const [head, ...rest] = messages;
  const tail = rest.pop();
  if (head?.type !== 'T') throw new Error(`expected RowDescription, got ${JSON.stringify(head)}`);
  if (tail?.type !== 'C') throw new Error(`expected CommandComplete, got ${JSON.stringify(tail)}`);
  for (const field of head.fields) {
    expect(field).toEqual({ name: field.name, tableOid: 0, column: 0, typeOid: 25, typeLength: -1, typeModifier: -1, format: 0 });
  }
  const rows = rest.map((m) => {
    if (m.type !== 'D') throw new Error(`expected DataRow, got ${JSON.stringify(m)}`);
    expect(m.values).toHaveLength(head.fields.length);
    return m.values;
  });
  return { columns: head.fields.map((f) => f.name), rows, tag: tail.tag };
}

async function run(sql: string, ctx: ConsoleContext): Promise<Message[]> {
  return (await runConsoleCommand(sql, ctx)).map(decode);
}

async function show(sql: string, ctx: ConsoleContext): Promise<ResultSet> {
  return resultSet(await run(sql, ctx));
}

/** The single ErrorResponse a failed command answers with. */
async function failure(sql: string, ctx: ConsoleContext): Promise<Record<string, string>> {
  const messages = await run(sql, ctx);
  expect(messages).toHaveLength(1);
  const [m] = messages;
  if (m?.type !== 'E') throw new Error(`expected ErrorResponse for ${JSON.stringify(sql)}, got ${JSON.stringify(m)}`);
  expect(m.fields.S).toBe('ERROR');
  return m.fields;
}

function tags(messages: Message[]): string[] {
  return messages.flatMap((m) => (m.type === 'C' ? [m.tag] : []));
}

function notices(messages: Message[]): string[] {
  return messages.flatMap((m) => (m.type === 'N' ? [m.fields.M as string] : []));
}

// ---------------------------------------------------------------------------------------------
// A fake context with a little of everything, including the NULLs.

const T0 = new Date('2025-03-01T10:00:00.000Z');
const T1 = new Date('2025-03-01T10:05:30.250Z');

function fakeContext(overrides: Partial<ConsoleContext> = {}): ConsoleContext {
  return {
    pools: () => [
      { database: 'app', mode: 'transaction', size: 20, idle: 3, active: 2, resetting: 1, connecting: 0, waiting: 4, maxWaitMs: 125 },
    ],
    clients: () => [
      { id: 1, tenant: 'acme', user: 'acme-dba', peer: '127.0.0.1:50000', state: 'active', connectedAt: T0, backendId: 7, admin: false },
      { id: 2, tenant: 'globex', user: undefined, peer: '10.0.0.9:41234', state: 'idle', connectedAt: T1, backendId: null, admin: false },
      { id: 3, tenant: 'ops', user: 'root', peer: '[::1]:6000', state: 'waiting', connectedAt: T1, backendId: null, admin: true },
    ],
    servers: () => [
      { id: 7, state: 'active', tenant: 'acme', dirty: true, createdAt: T0, lastUsedAt: T1 },
      { id: 8, state: 'idle', tenant: null, dirty: false, createdAt: T1, lastUsedAt: null },
      { id: 9, state: 'resetting', tenant: 'globex', dirty: false, createdAt: T0, lastUsedAt: T0 },
    ],
    tenants: () => [
      { id: 'acme', status: 'active', schema: 'tenant_acme', clients: 1 },
      { id: 'initech', status: 'suspended', schema: null, clients: 0 },
    ],
    stats: () => [
      { tenant: 'acme', statements: 1042, rejected: 3, clients: 1, backends: 1 },
      { tenant: 'globex', statements: 0, rejected: 0, clients: 1, backends: 0 },
    ],
    config: () => [
      { key: 'pool.size', value: '20', changeable: true },
      { key: 'jwt.secret', value: '********', changeable: true },
      { key: 'listen.port', value: '6432', changeable: false },
    ],
    reload: async () => ({ applied: ['pool.size', 'jwt.secret'], notApplied: ['listen.port'] }),
    pause: async () => undefined,
    resume: () => undefined,
    killTenant: () => 0,
    ...overrides,
  };
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// ---------------------------------------------------------------------------------------------

describe('admin console: SHOW', () => {
  it('SHOW HELP lists every command, and every command it lists is one the console accepts', async () => {
    const ctx = fakeContext();
    const help = await show('SHOW HELP', ctx);
    expect(help.columns).toEqual(['command', 'description']);
    expect(help.tag).toBe('SHOW');
    expect(help.rows.map((r) => r[0])).toEqual([
      'SHOW HELP',
      'SHOW VERSION',
      'SHOW POOLS',
      'SHOW CLIENTS',
      'SHOW SERVERS',
      'SHOW TENANTS',
      'SHOW STATS',
      'SHOW CONFIG',
      'RELOAD',
      'PAUSE',
      'RESUME',
      'KILL TENANT <id>',
    ]);
    for (const row of help.rows) expect(row[1]?.length).toBeGreaterThan(5);
    for (const { command } of CONSOLE_COMMANDS) {
      const messages = await run(command.replace('<id>', 'acme'), ctx);
      expect(messages.some((m) => m.type === 'E'), command).toBe(false);
      expect(tags(messages), command).toHaveLength(1);
    }
  });

  it('SHOW VERSION gives the version in package.json', async () => {
    const version = await show('SHOW VERSION', fakeContext());
    expect(version).toEqual({ columns: ['version'], rows: [[`pgfence ${VERSION}`]], tag: 'SHOW' });
  });

  it('SHOW POOLS', async () => {
    expect(await show('SHOW POOLS', fakeContext())).toEqual({
      columns: ['database', 'mode', 'size', 'idle', 'active', 'resetting', 'connecting', 'waiting', 'max_wait_ms'],
      rows: [['app', 'transaction', '20', '3', '2', '1', '0', '4', '125']],
      tag: 'SHOW',
    });
  });

  it('SHOW CLIENTS: NULL for an absent user and backend, yes/no for admin, ISO times', async () => {
    expect(await show('SHOW CLIENTS', fakeContext())).toEqual({
      columns: ['id', 'tenant', 'user', 'peer', 'state', 'connected_at', 'backend_id', 'admin'],
      rows: [
        ['1', 'acme', 'acme-dba', '127.0.0.1:50000', 'active', '2025-03-01T10:00:00.000Z', '7', 'no'],
        ['2', 'globex', null, '10.0.0.9:41234', 'idle', '2025-03-01T10:05:30.250Z', null, 'no'],
        ['3', 'ops', 'root', '[::1]:6000', 'waiting', '2025-03-01T10:05:30.250Z', null, 'yes'],
      ],
      tag: 'SHOW',
    });
  });

  it('SHOW SERVERS: NULL for an unpinned tenant and a backend never used', async () => {
    expect(await show('SHOW SERVERS', fakeContext())).toEqual({
      columns: ['id', 'state', 'tenant', 'dirty', 'created_at', 'last_used_at'],
      rows: [
        ['7', 'active', 'acme', 'yes', '2025-03-01T10:00:00.000Z', '2025-03-01T10:05:30.250Z'],
        ['8', 'idle', null, 'no', '2025-03-01T10:05:30.250Z', null],
        ['9', 'resetting', 'globex', 'no', '2025-03-01T10:00:00.000Z', '2025-03-01T10:00:00.000Z'],
      ],
      tag: 'SHOW',
    });
  });

  it('SHOW TENANTS: NULL schema in row mode', async () => {
    expect(await show('SHOW TENANTS', fakeContext())).toEqual({
      columns: ['id', 'status', 'schema', 'clients'],
      rows: [
        ['acme', 'active', 'tenant_acme', '1'],
        ['initech', 'suspended', null, '0'],
      ],
      tag: 'SHOW',
    });
  });

  it('SHOW STATS', async () => {
    expect(await show('SHOW STATS', fakeContext())).toEqual({
      columns: ['tenant', 'statements', 'rejected', 'clients', 'backends'],
      rows: [
        ['acme', '1042', '3', '1', '1'],
        ['globex', '0', '0', '1', '0'],
      ],
      tag: 'SHOW',
    });
  });

  it('SHOW CONFIG shows values as the context gives them (masked) and changeable as yes/no', async () => {
    expect(await show('SHOW CONFIG', fakeContext())).toEqual({
      columns: ['key', 'value', 'changeable'],
      rows: [
        ['pool.size', '20', 'yes'],
        ['jwt.secret', '********', 'yes'],
        ['listen.port', '6432', 'no'],
      ],
      tag: 'SHOW',
    });
  });

  it('an empty list is a RowDescription and SHOW with no rows', async () => {
    const ctx = fakeContext({ clients: () => [], servers: () => [], tenants: () => [], stats: () => [], pools: () => [], config: () => [] });
    for (const item of ['POOLS', 'CLIENTS', 'SERVERS', 'TENANTS', 'STATS', 'CONFIG']) {
      const result = await show(`SHOW ${item}`, ctx);
      expect(result.rows, item).toEqual([]);
      expect(result.columns.length, item).toBeGreaterThan(0);
      expect(result.tag).toBe('SHOW');
    }
  });

  it('shows control characters from a client (a user name) as \\xNN, not raw, and never NUL', async () => {
    const ctx = fakeContext({
      clients: () => [{ id: 1, tenant: 'acme', user: 'evil\u001b[2J\nname\u0000', peer: 'p', state: 'idle', connectedAt: T0, backendId: null, admin: false }],
    });
    const { rows } = await show('SHOW CLIENTS', ctx);
    expect(rows[0]?.[2]).toBe('evil\\x1b[2J\\x0aname\\x00');
  });

  it('keeps non-ASCII text intact', async () => {
    const ctx = fakeContext({ config: () => [{ key: 'log.name', value: 'pgfence – Zürich 東京', changeable: true }] });
    expect((await show('SHOW CONFIG', ctx)).rows).toEqual([['log.name', 'pgfence – Zürich 東京', 'yes']]);
  });

  it('an invalid Date is NULL rather than a crash', async () => {
    const ctx = fakeContext({ servers: () => [{ id: 1, state: 'idle', tenant: null, dirty: false, createdAt: new Date(Number.NaN), lastUsedAt: null }] });
    expect((await show('SHOW SERVERS', ctx)).rows).toEqual([['1', 'idle', null, 'no', null, null]]);
  });

  it('reads the context at the time of the command', async () => {
    let size = 1;
    const ctx = fakeContext({ stats: () => [{ tenant: 'acme', statements: size++, rejected: 0, clients: 0, backends: 0 }] });
    expect((await show('SHOW STATS', ctx)).rows[0]?.[1]).toBe('1');
    expect((await show('SHOW STATS', ctx)).rows[0]?.[1]).toBe('2');
  });
});

describe('admin console: commands that act', () => {
  it('RELOAD: a notice lists what was applied and what needs a restart, tag RELOAD', async () => {
    const reload = vi.fn(async () => ({ applied: ['pool.size', 'jwt.secret'], notApplied: ['listen.port'] }));
    const messages = await run('RELOAD', fakeContext({ reload }));
    expect(reload).toHaveBeenCalledTimes(1);
    expect(messages.map((m) => m.type)).toEqual(['N', 'C']);
    expect(notices(messages)).toEqual(['pgfence admin: RELOAD applied: pool.size, jwt.secret; not applied (needs a restart): listen.port']);
    expect(messages[0]).toMatchObject({ fields: { S: 'NOTICE', C: '00000' } });
    expect(tags(messages)).toEqual(['RELOAD']);
  });

  it('RELOAD with nothing changed says so', async () => {
    const messages = await run('RELOAD', fakeContext({ reload: async () => ({ applied: [], notApplied: [] }) }));
    expect(notices(messages)).toEqual(['pgfence admin: RELOAD applied: nothing; not applied (needs a restart): nothing']);
    expect(tags(messages)).toEqual(['RELOAD']);
  });

  it('RELOAD of an invalid file: F0000 with the problems (keys, lines) as the detail', async () => {
    const problem = new ConfigError('pgfence.yaml', [{ key: 'pool.size', message: 'expected an integer between 1 and 10000, got "ten"', line: 14 }]);
    const onError = vi.fn();
    const fields = await failure('RELOAD', fakeContext({ reload: () => Promise.reject(problem), onError }));
    expect(fields.C).toBe('F0000');
    expect(fields.M).toBe('pgfence admin: RELOAD failed; the running configuration is unchanged');
    expect(fields.D).toContain('pgfence.yaml:14: pool.size: expected an integer between 1 and 10000, got "ten"');
    expect(onError).not.toHaveBeenCalled();
  });

  it('RELOAD that fails otherwise: XX000 without the cause, which goes to onError', async () => {
    const cause = new Error('key import failed: -----BEGIN PRIVATE KEY----- MIIE...');
    const onError = vi.fn();
    const fields = await failure('reload', fakeContext({ reload: () => Promise.reject(cause), onError }));
    expect(fields).toMatchObject({ C: 'XX000', M: 'pgfence admin: RELOAD failed (see the pgfence log)' });
    expect(JSON.stringify(fields)).not.toContain('PRIVATE');
    expect(onError).toHaveBeenCalledWith('RELOAD', cause);
  });

  it('PAUSE answers only once the context says active work has drained', async () => {
    let called!: () => void;
    const pauseCalled = new Promise<void>((resolve) => (called = resolve));
    let drained!: () => void;
    const pause = vi.fn(() => {
      called();
      return new Promise<void>((resolve) => (drained = resolve));
    });
    let answered = false;
    const pending = runConsoleCommand('PAUSE', fakeContext({ pause })).then((out) => {
      answered = true;
      return out.map(decode);
    });
    await pauseCalled;
    // Everything already queued (promise callbacks) runs before an immediate: an answer that
    // did not wait for pause() to resolve would be in by then.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pause).toHaveBeenCalledTimes(1);
    expect(answered).toBe(false);
    drained();
    expect(await pending).toEqual([{ type: 'C', tag: 'PAUSE' }]);
  });

  it('RESUME', async () => {
    const resume = vi.fn();
    expect(await run('RESUME', fakeContext({ resume }))).toEqual([{ type: 'C', tag: 'RESUME' }]);
    expect(resume).toHaveBeenCalledTimes(1);
  });

  it('KILL TENANT: kills that tenant (id case kept), a notice with the count, tag KILL', async () => {
    const killTenant = vi.fn((id: string) => (id === 'acme' ? 3 : 1));
    const ctx = fakeContext({ killTenant });
    const many = await run('KILL TENANT acme', ctx);
    expect(killTenant).toHaveBeenLastCalledWith('acme');
    expect(notices(many)).toEqual(['pgfence admin: disconnected 3 client sessions of tenant "acme"']);
    expect(tags(many)).toEqual(['KILL']);
    expect(many.map((m) => m.type)).toEqual(['N', 'C']);

    const one = await run('kill tenant Acme_2-x;', ctx);
    expect(killTenant).toHaveBeenLastCalledWith('Acme_2-x');
    expect(notices(one)).toEqual(['pgfence admin: disconnected 1 client session of tenant "Acme_2-x"']);
    expect(tags(one)).toEqual(['KILL']);
  });

  it('KILL TENANT of a tenant with no sessions reports 0', async () => {
    const messages = await run('KILL TENANT nobody', fakeContext({ killTenant: () => 0 }));
    expect(notices(messages)).toEqual(['pgfence admin: disconnected 0 client sessions of tenant "nobody"']);
  });

  it('KILL TENANT refuses an invalid tenant id with 22023 and kills nothing', async () => {
    const killTenant = vi.fn(() => 0);
    const ctx = fakeContext({ killTenant });
    for (const id of ['1acme', '-acme', 'a.b', '"acme"', "'acme'", 'acme globex', "x')--", 'é', 'a'.repeat(64)]) {
      const fields = await failure(`KILL TENANT ${id}`, ctx);
      expect(fields.C, id).toBe('22023');
      expect(fields.M, id).toMatch(/^pgfence admin: invalid tenant id "/);
      expect(fields.D).toContain('63');
    }
    expect(killTenant).not.toHaveBeenCalled();
    // The longest valid id is accepted.
    await run(`KILL TENANT ${'a'.repeat(63)}`, ctx);
    expect(killTenant).toHaveBeenCalledWith('a'.repeat(63));
  });

  it('KILL TENANT without an id is a syntax error', async () => {
    for (const sql of ['KILL TENANT', 'kill tenant ;', 'KILL TENANT   ']) {
      const fields = await failure(sql, fakeContext());
      expect(fields).toMatchObject({ C: '42601', M: 'pgfence admin: KILL TENANT needs a tenant id (try SHOW HELP)' });
    }
  });
});

describe('admin console: syntax', () => {
  it('keywords in any case, any whitespace, at most one trailing semicolon', async () => {
    const ctx = fakeContext();
    const expected = await show('SHOW POOLS', ctx);
    for (const sql of ['show pools', 'Show Pools;', 'SHOW POOLS ;', '  SHOW\tPOOLS  ;  ', '\nshow\n\n  pools;\n', 'sHoW pOoLs;', 'SHOW POOLS\r\n']) {
      expect(await show(sql, ctx), JSON.stringify(sql)).toEqual(expected);
    }
    for (const sql of ['reload;', 'Pause ;', ' resume\n', 'RESUME;']) {
      expect(tags(await run(sql, ctx)), sql).toEqual([sql.trim().replace(/\s*;$/, '').toUpperCase()]);
    }
  });

  it('every SHOW item answers in lower case and with a semicolon too', async () => {
    const ctx = fakeContext();
    for (const item of ['help', 'version', 'pools', 'clients', 'servers', 'tenants', 'stats', 'config']) {
      expect(await show(`show ${item};`, ctx)).toEqual(await show(`SHOW ${item.toUpperCase()}`, ctx));
    }
  });

  it('anything else is 42601 "unknown command", naming what was sent', async () => {
    const ctx = fakeContext();
    for (const sql of [
      'SELECT 1',
      'select version()',
      'SHOW',
      'SHOW search_path',
      'SHOW POOLS CLIENTS',
      'SHOWPOOLS',
      'SHOW_POOLS',
      'RELOAD NOW',
      'PAUSE app',
      'KILL acme',
      'KILL',
      'BEGIN',
      '\\dt',
    ]) {
      const fields = await failure(sql, ctx);
      expect(fields.C, sql).toBe('42601');
      expect(fields.M, sql).toMatch(/^pgfence admin: unknown command ".*" \(try SHOW HELP\)$/);
    }
    expect((await failure('  select   1 ;', ctx)).M).toBe('pgfence admin: unknown command "select 1" (try SHOW HELP)');
  });

  it('several commands in one query are refused, and none of them runs', async () => {
    const killTenant = vi.fn(() => 0);
    const ctx = fakeContext({ killTenant });
    for (const sql of ['SHOW POOLS;;', 'SHOW POOLS; SHOW CLIENTS', 'SHOW POOLS; KILL TENANT acme;', 'KILL TENANT acme; SELECT 1']) {
      expect(await failure(sql, ctx)).toMatchObject({ C: '42601', M: 'pgfence admin: one command per query (try SHOW HELP)' });
    }
    expect(killTenant).not.toHaveBeenCalled();
  });

  it('an unknown command is quoted on one line, without control characters, at most 64 characters', async () => {
    const fields = await failure(`FROB\u001b[31m ${'x'.repeat(200)}\n`, fakeContext());
    expect(fields.M).toBe(`pgfence admin: unknown command "FROB [31m ${'x'.repeat(53)}…" (try SHOW HELP)`);
  });

  it('a query with no command gets EmptyQueryResponse, as Postgres answers', async () => {
    for (const sql of ['', '   ', ';', ' ; \n']) expect(await run(sql, fakeContext()), JSON.stringify(sql)).toEqual([{ type: 'I' }]);
  });
});

describe('admin console: failures in the context', () => {
  it('a SHOW whose source throws answers XX000 and reports the cause; the console never rejects', async () => {
    const cause = new Error('boom');
    const onError = vi.fn();
    const fields = await failure('SHOW CLIENTS', fakeContext({ clients: () => { throw cause; }, onError }));
    expect(fields).toMatchObject({ C: 'XX000', M: 'pgfence admin: SHOW CLIENTS failed (see the pgfence log)' });
    expect(onError).toHaveBeenCalledWith('SHOW CLIENTS', cause);
  });

  it('PAUSE and KILL TENANT failures too, even when onError itself throws', async () => {
    const ctx = fakeContext({
      pause: () => Promise.reject(new Error('x')),
      killTenant: () => { throw new Error('y'); },
      onError: () => { throw new Error('logger down'); },
    });
    expect((await failure('PAUSE', ctx)).M).toBe('pgfence admin: PAUSE failed (see the pgfence log)');
    expect((await failure('KILL TENANT acme', ctx)).M).toBe('pgfence admin: KILL failed (see the pgfence log)');
  });
});
