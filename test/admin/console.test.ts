import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { CONSOLE_COMMANDS } from '../../src/admin/console-commands.js';
import { type ConsoleBackend, type ConsoleContext, type ConsoleSession, runConsoleCommand } from '../../src/admin/console.js';
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

const TYPE_OIDS: Record<number, { name: string; length: number }> = {
  25: { name: 'text', length: -1 },
  23: { name: 'int4', length: 4 },
  20: { name: 'int8', length: 8 },
  1700: { name: 'numeric', length: -1 },
};

/** Each column's type name from RowDescription. */
async function columnTypes(sql: string, ctx: ConsoleContext): Promise<Record<string, string>> {
  const [head] = await run(sql, ctx);
  if (head?.type !== 'T') throw new Error('expected RowDescription');
  return Object.fromEntries(head.fields.map((f) => [f.name, TYPE_OIDS[f.typeOid]?.name ?? `oid ${f.typeOid}`]));
}

/** A SHOW answer: RowDescription (text, int4, int8 or numeric columns in text format), DataRows, CommandComplete, nothing else. */
function resultSet(messages: Message[]): ResultSet {
  const [head, ...rest] = messages;
  const tail = rest.pop();
  if (head?.type !== 'T') throw new Error(`expected RowDescription, got ${JSON.stringify(head)}`);
  if (tail?.type !== 'C') throw new Error(`expected CommandComplete, got ${JSON.stringify(tail)}`);
  for (const field of head.fields) {
    const type = TYPE_OIDS[field.typeOid];
    expect(type, field.name).toBeDefined();
    expect(field).toEqual({ name: field.name, tableOid: 0, column: 0, typeOid: field.typeOid, typeLength: type?.length, typeModifier: -1, format: 0 });
  }
  const rows = rest.map((m) => {
    if (m.type !== 'D') throw new Error(`expected DataRow, got ${JSON.stringify(m)}`);
    expect(m.values).toHaveLength(head.fields.length);
    head.fields.forEach((f, i) => {
      const value = m.values[i];
      if (f.typeOid !== 25 && value !== null && value !== undefined) expect(value, f.name).toMatch(/^-?\d+$/);
    });
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

const ZERO_ROW = { clActive: 0, clWaiting: 0, svActive: 0, svBeingCanceled: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: 0, maxWaitMs: 0 };
const TOTALS = { assignments: 0, transactions: 0, queries: 0, received: 0, sent: 0, transactionMicros: 0, queryMicros: 0, waitMicros: 0 };

function client(fields: Partial<ConsoleSession> & { id: number }): ConsoleSession {
  return {
    tenant: null,
    user: undefined,
    database: null,
    applicationName: null,
    addr: '127.0.0.1',
    port: 50000,
    localAddr: '127.0.0.1',
    localPort: 6432,
    state: 'idle',
    connectedAt: T0,
    backendId: null,
    tls: false,
    ...fields,
  };
}

function server(fields: Partial<ConsoleBackend> & { id: number }): ConsoleBackend {
  return {
    state: 'idle',
    tenant: null,
    holder: null,
    dirty: false,
    createdAt: T0,
    lastUsedAt: null,
    cancelling: false,
    closeNeeded: false,
    processId: 4242,
    preparedStatements: 0,
    clientId: null,
    ...fields,
  };
}

function fakeContext(overrides: Partial<ConsoleContext> = {}): ConsoleContext {
  return {
    target: () => ({ host: 'db.internal', port: 5432, database: 'app', user: 'pgfence_pool' }),
    pools: () => [
      { ...ZERO_ROW, tenant: 'acme', clActive: 2, clWaiting: 4, svActive: 1, svIdle: 3, svUsed: 1, maxWaitMs: 1250.5, database: 'app', user: 'pgfence_pool', poolMode: 'transaction' },
      { ...ZERO_ROW, tenant: null, svIdle: 1, svLogin: 2, database: 'app', user: 'pgfence_pool', poolMode: 'transaction' },
      { ...ZERO_ROW, tenant: 'globex', clActive: 1, svActive: 1, database: 'eu_app', user: 'eu_pool', poolMode: 'transaction', target: 'eu' },
    ],
    clients: () => [
      client({ id: 1, tenant: 'acme', user: 'acme-dba', database: 'app', applicationName: 'psql', state: 'active', backendId: 7, tls: true }),
      client({ id: 2, tenant: 'globex', addr: '10.0.0.9', port: 41234, state: 'waiting', connectedAt: T1 }),
      client({ id: 3, user: 'root', database: 'pgfence', state: 'console', addr: '::1', port: 6000 }),
    ],
    servers: () => [
      server({ id: 7, state: 'active', tenant: 'acme', holder: 'acme', dirty: true, lastUsedAt: T1, clientId: 1, preparedStatements: 2 }),
      server({ id: 8, createdAt: T1, closeNeeded: true, processId: 4243 }),
      server({ id: 9, state: 'resetting', tenant: 'globex', lastUsedAt: T0, processId: 4244 }),
      server({ id: 10, state: 'active', tenant: 'acme', cancelling: true, processId: 4245 }),
    ],
    databases: () => [
      {
        name: 'app',
        host: 'db.internal',
        port: 5432,
        database: 'app',
        forceUser: 'pgfence_pool',
        poolSize: 20,
        serverLifetimeSeconds: 3600,
        poolMode: 'transaction',
        maxConnections: 20,
        currentConnections: 4,
        currentClientConnections: 2,
        paused: true,
        maxPerTenant: 5,
      },
      {
        name: 'eu',
        host: 'db.eu',
        port: 5433,
        database: 'eu_app',
        forceUser: 'eu_pool',
        poolSize: 4,
        serverLifetimeSeconds: 3600,
        poolMode: 'transaction',
        maxConnections: 4,
        currentConnections: 1,
        currentClientConnections: 1,
        paused: false,
        disabled: true,
        maxPerTenant: 0,
        target: 'eu',
      },
      {
        name: 'pgfence',
        host: null,
        port: 6432,
        database: 'pgfence',
        forceUser: null,
        poolSize: 0,
        serverLifetimeSeconds: 0,
        poolMode: 'statement',
        maxConnections: 0,
        currentConnections: 0,
        currentClientConnections: 1,
        paused: false,
        maxPerTenant: 0,
        target: null,
      },
    ],
    lists: () => [
      { list: 'databases', items: 2 },
      { list: 'used_clients', items: 3 },
    ],
    tenants: () => [
      { id: 'acme', status: 'active', schema: 'tenant_acme', clients: 1, source: 'config' },
      { id: 'initech', status: 'suspended', schema: null, clients: 0, source: 'registry' },
      { id: 'hooli', status: null, schema: 'tenant_hooli', clients: 2, source: 'session' },
    ],
    stats: () => [
      {
        tenant: 'acme',
        database: 'app',
        totals: { assignments: 10, transactions: 12, queries: 30, received: 4096, sent: 2 ** 33, transactionMicros: 123456, queryMicros: 65432.4, waitMicros: 7 },
        averages: { ...TOTALS, transactions: 0.2, queries: 0.5, queryMicros: 2181.08 },
        statements: 1042,
        rejected: 3,
      },
    ],
    config: () => [
      { key: 'pool.size', value: '20', default: '10', changeable: true },
      { key: 'jwt.secret', value: '********', default: '', changeable: true },
      { key: 'listen.port', value: '6432', default: '6432', changeable: false },
    ],
    reload: async () => ({ applied: ['pool.size', 'jwt.secret'], notApplied: ['listen.port'] }),
    pause: async () => undefined,
    resume: () => undefined,
    reconnect: () => 0,
    shutdown: () => undefined,
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
      'SHOW DATABASES',
      'SHOW LISTS',
      'SHOW TENANTS',
      'SHOW STATS',
      'SHOW CONFIG',
      'RELOAD',
      'PAUSE',
      'RESUME',
      'RECONNECT',
      'SHUTDOWN',
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

  it("SHOW POOLS: PgBouncer's columns in its order and types, one row per pool and tenant, then the tenant and target", async () => {
    const ctx = fakeContext();
    expect(await show('SHOW POOLS', ctx)).toEqual({
      columns: [
        'database', 'user', 'cl_active', 'cl_waiting', 'cl_active_cancel_req', 'cl_waiting_cancel_req', 'sv_active', 'sv_active_cancel',
        'sv_being_canceled', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode', 'load_balance_hosts', 'tenant', 'target',
      ],
      rows: [
        ['app', 'pgfence_pool', '2', '4', '0', '0', '1', '0', '0', '3', '1', '0', '0', '1', '250500', 'transaction', null, 'acme', 'default'],
        ['app', 'pgfence_pool', '0', '0', '0', '0', '0', '0', '0', '1', '0', '0', '2', '0', '0', 'transaction', null, null, 'default'],
        ['eu_app', 'eu_pool', '1', '0', '0', '0', '1', '0', '0', '0', '0', '0', '0', '0', '0', 'transaction', null, 'globex', 'eu'],
      ],
      tag: 'SHOW',
    });
    const types = await columnTypes('SHOW POOLS', ctx);
    expect(types).toMatchObject({ database: 'text', user: 'text', cl_active: 'int4', sv_login: 'int4', maxwait: 'int4', maxwait_us: 'int4', pool_mode: 'text', tenant: 'text' });
  });

  it("SHOW CLIENTS: PgBouncer's columns, NULL where pgfence does not know, then the tenant", async () => {
    const result = await show('SHOW CLIENTS', fakeContext());
    expect(result.columns).toEqual([
      'type', 'user', 'database', 'replication', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time', 'wait',
      'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id', 'tenant',
    ]);
    expect(result.rows).toEqual([
      ['C', 'acme-dba', 'app', 'none', 'active', '127.0.0.1', '50000', '127.0.0.1', '6432', '2025-03-01T10:00:00.000Z', null, '0', '0', '0', '1', '7', '0', 'TLS', 'psql', '0', '1', 'acme'],
      ['C', '(nouser)', '(nodb)', 'none', 'waiting', '10.0.0.9', '41234', '127.0.0.1', '6432', '2025-03-01T10:05:30.250Z', null, '0', '0', '0', '2', '', '0', '', '', '0', '2', 'globex'],
      ['C', 'root', 'pgfence', 'none', 'console', '::1', '6000', '127.0.0.1', '6432', '2025-03-01T10:00:00.000Z', null, '0', '0', '0', '3', '', '0', '', '', '0', '3', null],
    ]);
    expect(await columnTypes('SHOW CLIENTS', fakeContext())).toMatchObject({ port: 'int4', local_port: 'int4', wait: 'int4', id: 'int4', connect_time: 'text' });
  });

  it('SHOW SERVERS: the target, the server pid, the client served, RECONNECT marks, then tenant and dirty', async () => {
    const result = await show('SHOW SERVERS', fakeContext());
    expect(result.columns).toEqual([
      'type', 'user', 'database', 'replication', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time', 'wait',
      'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id', 'tenant', 'dirty', 'target',
    ]);
    expect(result.rows.map((r) => [r[4], r[13], r[15], r[16], r[19], r[20], r[21], r[22], r[9], r[10]])).toEqual([
      ['active', '0', '1', '4242', '2', '7', 'acme', 'yes', '2025-03-01T10:00:00.000Z', '2025-03-01T10:05:30.250Z'],
      ['idle', '1', '', '4243', '0', '8', null, 'no', '2025-03-01T10:05:30.250Z', null],
      ['tested', '0', '', '4244', '0', '9', 'globex', 'no', '2025-03-01T10:00:00.000Z', '2025-03-01T10:00:00.000Z'],
      ['being_canceled', '0', '', '4245', '0', '10', 'acme', 'no', '2025-03-01T10:00:00.000Z', null],
    ]);
    expect(result.rows[0]?.slice(0, 9)).toEqual(['S', 'pgfence_pool', 'app', 'none', 'active', 'db.internal', '5432', '', '0']);
  });

  it('SHOW DATABASES and SHOW LISTS: PgBouncer columns, integers typed int4, then the target', async () => {
    const dbs = await show('SHOW DATABASES', fakeContext());
    expect(dbs.columns).toEqual([
      'name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool_size', 'server_lifetime', 'pool_mode',
      'load_balance_hosts', 'max_connections', 'current_connections', 'max_client_connections', 'current_client_connections', 'paused', 'disabled',
      'max_per_tenant', 'target',
    ]);
    // One row per target (a draining one is `disabled`), the console's own last with target NULL.
    expect(dbs.rows).toEqual([
      ['app', 'db.internal', '5432', 'app', 'pgfence_pool', '20', '0', '0', '3600', 'transaction', null, '20', '4', '0', '2', '1', '0', '5', 'default'],
      ['eu', 'db.eu', '5433', 'eu_app', 'eu_pool', '4', '0', '0', '3600', 'transaction', null, '4', '1', '0', '1', '0', '1', '0', 'eu'],
      ['pgfence', null, '6432', 'pgfence', null, '0', '0', '0', '0', 'statement', null, '0', '0', '0', '1', '0', '0', '0', null],
    ]);
    const lists = await show('SHOW LISTS', fakeContext());
    expect(lists).toEqual({ columns: ['list', 'items'], rows: [['databases', '2'], ['used_clients', '3']], tag: 'SHOW' });
    expect(await columnTypes('SHOW LISTS', fakeContext())).toEqual({ list: 'text', items: 'int4' });
  });

  it('SHOW TENANTS: configured, registry and connected tenants; NULL schema in row mode, NULL status when unknown', async () => {
    expect(await show('SHOW TENANTS', fakeContext())).toEqual({
      columns: ['id', 'status', 'schema', 'clients', 'source'],
      rows: [
        ['acme', 'active', 'tenant_acme', '1', 'config'],
        ['initech', 'suspended', null, '0', 'registry'],
        ['hooli', null, 'tenant_hooli', '2', 'session'],
      ],
      tag: 'SHOW',
    });
  });

  it("SHOW STATS: PgBouncer's totals and averages as numeric (whole numbers, past 2^31), then tenant, statements, rejected", async () => {
    const result = await show('SHOW STATS', fakeContext());
    expect(result.columns).toEqual([
      'database', 'total_server_assignment_count', 'total_xact_count', 'total_query_count', 'total_received', 'total_sent', 'total_xact_time',
      'total_query_time', 'total_wait_time', 'total_client_parse_count', 'total_server_parse_count', 'total_bind_count',
      'avg_server_assignment_count', 'avg_xact_count', 'avg_query_count', 'avg_recv', 'avg_sent', 'avg_xact_time', 'avg_query_time',
      'avg_wait_time', 'avg_client_parse_count', 'avg_server_parse_count', 'avg_bind_count', 'tenant', 'statements', 'rejected',
    ]);
    expect(result.rows).toEqual([
      ['app', '10', '12', '30', '4096', '8589934592', '123456', '65432', '7', '0', '0', '0', '0', '0', '1', '0', '0', '0', '2181', '0', '0', '0', '0', 'acme', '1042', '3'],
    ]);
    const types = await columnTypes('SHOW STATS', fakeContext());
    expect(types['database']).toBe('text');
    expect(types['tenant']).toBe('text');
    expect(Object.entries(types).filter(([, t]) => t !== 'text').every(([, t]) => t === 'numeric')).toBe(true);
  });

  it('SHOW CONFIG: key, value (masked), default, changeable yes/no', async () => {
    expect(await show('SHOW CONFIG', fakeContext())).toEqual({
      columns: ['key', 'value', 'default', 'changeable'],
      rows: [
        ['pool.size', '20', '10', 'yes'],
        ['jwt.secret', '********', '', 'yes'],
        ['listen.port', '6432', '6432', 'no'],
      ],
      tag: 'SHOW',
    });
  });

  it('an empty list is a RowDescription and SHOW with no rows', async () => {
    const ctx = fakeContext({ clients: () => [], servers: () => [], tenants: () => [], stats: () => [], pools: () => [], config: () => [], databases: () => [], lists: () => [] });
    for (const item of ['POOLS', 'CLIENTS', 'SERVERS', 'DATABASES', 'LISTS', 'TENANTS', 'STATS', 'CONFIG']) {
      const result = await show(`SHOW ${item}`, ctx);
      expect(result.rows, item).toEqual([]);
      expect(result.columns.length, item).toBeGreaterThan(0);
      expect(result.tag).toBe('SHOW');
    }
  });

  it('shows control characters from a client (a user name) as \\xNN, not raw, and never NUL', async () => {
    const ctx = fakeContext({
      clients: () => [client({ id: 1, tenant: 'acme', user: 'evil\u001b[2J\nname\u0000', applicationName: 'app\u0007' })],
    });
    const { rows } = await show('SHOW CLIENTS', ctx);
    expect(rows[0]?.[1]).toBe('evil\\x1b[2J\\x0aname\\x00');
    expect(rows[0]?.[18]).toBe('app\\x07');
  });

  it('keeps non-ASCII text intact', async () => {
    const ctx = fakeContext({ config: () => [{ key: 'log.name', value: 'pgfence – Zürich 東京', default: '', changeable: true }] });
    expect((await show('SHOW CONFIG', ctx)).rows).toEqual([['log.name', 'pgfence – Zürich 東京', '', 'yes']]);
  });

  it('an invalid Date is NULL rather than a crash', async () => {
    const ctx = fakeContext({ servers: () => [server({ id: 1, createdAt: new Date(Number.NaN) })] });
    expect((await show('SHOW SERVERS', ctx)).rows[0]?.[9]).toBeNull();
  });

  it('reads the context at the time of the command', async () => {
    let size = 1;
    const ctx = fakeContext({ stats: () => [{ tenant: 'acme', database: 'app', totals: { ...TOTALS, assignments: size++ }, averages: TOTALS, statements: 0, rejected: 0 }] });
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

  it('RECONNECT: marks the backends, a notice with the count, tag RECONNECT', async () => {
    const reconnect = vi.fn(() => 3);
    const messages = await run('reconnect;', fakeContext({ reconnect }));
    expect(reconnect).toHaveBeenCalledTimes(1);
    expect(notices(messages)).toEqual(['pgfence admin: 3 server connections will close when released']);
    expect(tags(messages)).toEqual(['RECONNECT']);
  });

  it('SHUTDOWN: asks the context to shut down, tag SHUTDOWN; anything after it is a syntax error', async () => {
    const shutdown = vi.fn();
    const messages = await run('SHUTDOWN', fakeContext({ shutdown }));
    expect(shutdown).toHaveBeenCalledTimes(1);
    expect(tags(messages)).toEqual(['SHUTDOWN']);
    expect((await failure('SHUTDOWN NOW', fakeContext({ shutdown }))).C).toBe('42601');
    expect(shutdown).toHaveBeenCalledTimes(1);
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
