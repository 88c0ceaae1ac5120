import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { QueryTimer } from '../../src/admin/index.js';
import { PreparedStatements } from '../../src/backend/prepared-statements.js';
import type { ErrorFields } from '../../src/protocol/build.js';
import { readCString, type SqlText } from '../../src/protocol/decode.js';
import { type FramedMessage, MessageFramer } from '../../src/protocol/framer.js';
import { ClientToServer } from '../../src/relay/client-to-server.js';
import { ReplyTracker } from '../../src/relay/reply-tracker.js';
import { ServerToClient } from '../../src/relay/server-to-client.js';
import type { Inspection, StatementInspector } from '../../src/relay/statement-inspector.js';
import { ClientStatements } from '../../src/relay/statements.js';
import { errorMessage, readyForQueryMessage } from '../support/backend-messages.js';
import { message, splitMessages } from '../support/wire.js';

const refusal = (text: string): ErrorFields => ({ severity: 'ERROR', sqlstate: '42501', message: `refused: ${text}` });

/**
 * Stands in for the guard by the SQL's first word: REFUSE… is refused, LISTEN x is rewritten to
 * the tenant's channel, SET a = b is a setting to replay, HIDDEN… has effects the guard cannot see.
 */
class FakeInspector {
  readonly seen: string[] = [];
  readonly unchecked: string[] = [];

  inspect(sql: SqlText): Inspection {
    this.seen.push(sql.text);
    const text = sql.text;
    if (text.startsWith('REFUSE')) return { refused: refusal(text) };
    const nothing = { refused: null, edits: [], sets: [], hidden: false, channelChanges: [], reset: null, deallocations: [], notifyParams: [] } as const;
    if (text.startsWith('LISTEN ')) {
      return { ...nothing, edits: [{ start: 0, end: sql.end - sql.start, text: `LISTEN "acme.${text.slice(7)}"` }] };
    }
    const set = /^SET (\w+) = (\w+)$/.exec(text);
    if (set !== null) return { ...nothing, sets: [{ name: set[1] as string, value: set[2] as string }] };
    return { ...nothing, hidden: text.startsWith('HIDDEN') };
  }

  refuseUnchecked(reason: string): void {
    this.unchecked.push(reason);
  }
}

/** Messages framed from one buffer of their own, as a client's chunk would be. */
function framed(messages: readonly Buffer[]): { chunk: Buffer; messages: FramedMessage[] } {
  const chunk = Buffer.alloc(messages.reduce((n, m) => n + m.length, 0));
  let at = 0;
  for (const m of messages) at += m.copy(chunk, at);
  const out: FramedMessage[] = [];
  new MessageFramer(1 << 20).push(chunk, out);
  return { chunk, messages: out };
}

/** What the server gets, one readable line per message. */
function show(out: readonly Buffer[]): string[] {
  return splitMessages(Buffer.concat(out)).map(({ type, body }) => {
    const full = message(type, body);
    switch (type) {
      case 'Q':
        return `Q ${readCString(full, 5)[0]}`;
      case 'P': {
        const [name, next] = readCString(full, 5);
        return `P ${name} ${readCString(full, next)[0]}`;
      }
      case 'B': {
        const [portal, next] = readCString(full, 5);
        return `B ${portal} ${readCString(full, next)[0]}`;
      }
      case 'D':
      case 'C':
        return `${type} ${String.fromCharCode(body[0] as number)} ${readCString(full, 6)[0]}`;
      case 'E':
        return `E ${readCString(full, 5)[0]}`;
      default:
        return type;
    }
  });
}

/** Feeds server replies (type letters) to the tracker; returns which are dropped. */
const replies = (tracker: ReplyTracker, types: string): boolean[] => [...types].map((t) => tracker.onReply(t.charCodeAt(0)));

const FUNCTION_CALL = message('F', Buffer.from([0, 0, 0x04, 0xd2, 0, 0, 0, 0, 0, 0]));

function setup(mode: 'session' | 'transaction', cap = 100) {
  const tracker = new ReplyTracker();
  const inspector = new FakeInspector();
  const timer = new QueryTimer(() => undefined);
  const statements = mode === 'transaction' ? new ClientStatements('acme') : null;
  const toServer = new ClientToServer(7, 'acme', tracker, inspector as unknown as StatementInspector, statements, timer, { repinSql: () => 'SELECT 1', repinSent: () => undefined, effectsSent: () => undefined });
  /** A backend a previous holder used: it may hold that holder's unnamed statement. */
  const usedBackend = (): PreparedStatements => {
    const p = new PreparedStatements(cap);
    p.unnamedLeft = true;
    return p;
  };
  let prepared = usedBackend();
  const ctx = {
    tracker,
    inspector,
    timer,
    toServer,
    get prepared() {
      return prepared;
    },
    /** Binds another backend (one that holds none of the statements; with `unnamedLeft`, an unnamed one of its previous holder's). */
    rebind(unnamedLeft = true): PreparedStatements {
      prepared = usedBackend();
      prepared.unnamedLeft = unnamedLeft;
      toServer.startBinding();
      return prepared;
    },
    send(...messages: Buffer[]) {
      const { chunk, messages: framedMessages } = framed(messages);
      const out: Buffer[] = [];
      const result = toServer.relay(framedMessages, prepared, out);
      return { chunk, out, result, shown: show(out) };
    },
    serverName(clientName: string): string {
      const entry = statements?.lookup(clientName);
      if (entry === undefined) throw new Error(`no statement ${clientName}`);
      return entry.serverName;
    },
  };
  toServer.startBinding();
  return ctx;
}

describe('ClientToServer in session mode', () => {
  it('passes a batch through unchanged, contiguous messages as one Buffer of the client\'s chunk', () => {
    const c = setup('session');
    const sent = c.send(
      serialize.query('SELECT 1'),
      serialize.parse({ name: 's1', text: 'SELECT $1::int', types: [23] }),
      serialize.bind({ statement: 's1', values: ['1'] }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.close({ type: 'S', name: 's1' }),
      serialize.sync(),
      serialize.flush(),
      serialize.copyData(Buffer.from('1\n')),
      serialize.copyDone(),
      serialize.copyFail('no'),
    );
    expect(sent.result).toBe('sent');
    expect(sent.out).toHaveLength(1);
    expect(sent.out[0]?.equals(sent.chunk)).toBe(true);
    expect(sent.out[0]?.buffer).toBe(sent.chunk.buffer);
    expect(c.inspector.seen).toEqual(['SELECT 1', 'SELECT $1::int']);
    // One round trip per Query and per Sync.
    expect(c.timer.pending).toBe(2);
    expect(c.toServer.midBatch).toBe(false);

    // Every message was announced to the tracker, none to be dropped.
    expect(replies(c.tracker, 'TDC')).toEqual([false, false, false]);
    c.tracker.onReady();
    expect(replies(c.tracker, '12TDC3')).toEqual(Array(6).fill(false));
    expect(c.tracker.idle).toBe(false);
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('sends a rewritten Query in place of the original, the messages around it still slices of the chunk', () => {
    const c = setup('session');
    const sent = c.send(serialize.query('SELECT 1'), serialize.query('LISTEN jobs'), serialize.query('SELECT 2'));
    expect(sent.shown).toEqual(['Q SELECT 1', 'Q LISTEN "acme.jobs"', 'Q SELECT 2']);
    expect(sent.out).toHaveLength(3);
    expect(sent.out[0]?.buffer).toBe(sent.chunk.buffer);
    expect(sent.out[2]?.buffer).toBe(sent.chunk.buffer);
  });

  it('turns a refused Query into a stand-in Execute + Sync whose error the tracker will swap', () => {
    const c = setup('session');
    const sent = c.send(serialize.query('SELECT 1'), serialize.query('REFUSE this'), serialize.query('SELECT 2'), serialize.query('REFUSE that'));
    expect(sent.shown).toEqual(['Q SELECT 1', 'E pgfence_rejected_7_1', 'S', 'Q SELECT 2', 'E pgfence_rejected_7_2', 'S']);
    expect(c.timer.pending).toBe(4);
    expect(c.toServer.midBatch).toBe(false);

    expect(replies(c.tracker, 'C')).toEqual([false]);
    c.tracker.onReady();
    expect(c.tracker.onError().standIn).toEqual({ marker: 'pgfence_rejected_7_1', error: refusal('REFUSE this') });
    c.tracker.onReady();
    expect(replies(c.tracker, 'C')).toEqual([false]);
    c.tracker.onReady();
    expect(c.tracker.onError().standIn?.marker).toBe('pgfence_rejected_7_2');
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('after a refused Parse drops everything up to the Sync, across batches, unlooked at', () => {
    const c = setup('session');
    const first = c.send(
      serialize.parse({ text: 'SELECT 1' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.parse({ text: 'REFUSE this' }),
      serialize.bind({}),
    );
    expect(first.shown).toEqual(['P  SELECT 1', 'B  ', 'E ', 'E pgfence_rejected_7_1']);
    expect(c.toServer.midBatch).toBe(true);

    const second = c.send(serialize.parse({ text: 'SELECT unseen' }), serialize.describe({ type: 'S' }), serialize.execute({}), serialize.flush());
    expect(second.shown).toEqual([]);
    expect(c.toServer.midBatch).toBe(true);

    const third = c.send(serialize.sync(), serialize.query('SELECT 3'));
    expect(third.shown).toEqual(['S', 'Q SELECT 3']);
    expect(c.toServer.midBatch).toBe(false);
    expect(c.inspector.seen).toEqual(['SELECT 1', 'REFUSE this', 'SELECT 3']);

    expect(replies(c.tracker, '12C')).toEqual([false, false, false]);
    expect(c.tracker.onError().standIn?.error).toEqual(refusal('REFUSE this'));
    c.tracker.onReady();
    expect(replies(c.tracker, 'C')).toEqual([false]);
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('refuses a FunctionCall with a stand-in, unchecked', () => {
    const c = setup('session');
    const sent = c.send(FUNCTION_CALL);
    expect(sent.shown).toEqual(['E pgfence_rejected_7_1', 'S']);
    expect(c.inspector.unchecked).toEqual(['function_call']);
    expect(c.inspector.seen).toEqual([]);
    expect(c.timer.pending).toBe(1);
    expect(c.tracker.onError().standIn?.error.sqlstate).toBe('42501');
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('returns terminate at a Terminate, having relayed what came before it and nothing after', () => {
    const c = setup('session');
    const sent = c.send(serialize.query('SELECT 1'), serialize.end(), serialize.query('SELECT 2'));
    expect(sent.result).toBe('terminate');
    expect(sent.shown).toEqual(['Q SELECT 1']);
    expect(c.inspector.seen).toEqual(['SELECT 1']);
  });

  it('returns a violation for a message type a client may not send here', () => {
    const c = setup('session');
    expect(c.send(serialize.query('SELECT 1'), message('p', 'secret\0')).result).toEqual({ violation: 'unexpected message type "p"' });
    expect(c.send(message('Z', 'I')).result).toEqual({ violation: 'unexpected message type "Z"' });
  });

  it('accumulates the settings and hidden effects of a binding, and forgets them at the next', () => {
    const c = setup('session');
    c.send(serialize.query('SET a = 1'));
    expect(c.toServer.bindingEffects()).toEqual({ sets: [{ name: 'a', value: '1' }], hidden: false, channelChanges: [] });
    c.send(serialize.parse({ text: 'HIDDEN work' }), serialize.query('REFUSE SET'), serialize.parse({ text: 'SET b = 2' }), serialize.sync());
    expect(c.toServer.bindingEffects()).toEqual({ sets: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }], hidden: true, channelChanges: [] });
    c.send(serialize.query('SELECT 1'));
    expect(c.toServer.bindingEffects().hidden).toBe(true);
    c.rebind();
    expect(c.toServer.bindingEffects()).toEqual({ sets: [], hidden: false, channelChanges: [] });
  });

  it('never closes the unnamed statement on binding', () => {
    const c = setup('session');
    expect(c.send(serialize.bind({}), serialize.execute({}), serialize.sync()).shown).toEqual(['B  ', 'E ', 'S']);
    c.rebind();
    expect(c.send(serialize.query('SELECT 1')).shown).toEqual(['Q SELECT 1']);
  });
});

describe('ClientToServer in transaction mode', () => {
  it('closes the previous holder\'s unnamed statement first thing after a binding, quietly, unless the first message drops it', () => {
    const c = setup('transaction');
    // A Bind first could reach the previous holder's statement: Close goes first, its reply is pgfence's.
    expect(c.send(serialize.bind({}), serialize.execute({}), serialize.sync()).shown).toEqual(['C S ', 'B  ', 'E ', 'S']);
    expect(replies(c.tracker, '3')).toEqual([true]);
    expect(replies(c.tracker, '2C')).toEqual([false, false]);
    expect(c.prepared.unnamedLeft).toBe(false);
    // Closed once per binding.
    expect(c.send(serialize.bind({}), serialize.execute({}), serialize.sync()).shown).toEqual(['B  ', 'E ', 'S']);
    c.rebind();
    // A named Parse does not replace the unnamed statement.
    expect(c.send(serialize.parse({ name: 'n', text: 'SELECT 1' }), serialize.sync()).shown[0]).toBe('C S ');
    c.rebind();
    // A refused first message never reaches the server: the Close goes out before its stand-in.
    expect(c.send(serialize.query('REFUSE this')).shown).toEqual(['C S ', 'E pgfence_rejected_7_1', 'S']);
    c.rebind();
    expect(c.send(serialize.parse({ text: 'REFUSE this' }), serialize.bind({}), serialize.sync()).shown).toEqual(['C S ', 'E pgfence_rejected_7_2', 'S']);
  });

  it('sends no Close when the binding starts with what drops the unnamed statement, or the backend holds none', () => {
    const c = setup('transaction');
    // A simple Query drops the unnamed statement before it runs.
    expect(c.send(serialize.query('SELECT 1')).shown).toEqual(['Q SELECT 1']);
    expect(c.prepared.unnamedLeft).toBe(false);
    c.rebind();
    // So does an unnamed Parse, before it parses (even when the parse then fails); the new one is this client's.
    expect(c.send(serialize.parse({ text: 'SELECT 2' }), serialize.bind({}), serialize.execute({}), serialize.sync()).shown).toEqual(['P  SELECT 2', 'B  ', 'E ', 'S']);
    expect(c.prepared.unnamedLeft).toBe(true);
    // A backend no one left an unnamed statement on needs no Close.
    c.rebind(false);
    expect(c.send(serialize.bind({ statement: 'x' }), serialize.execute({}), serialize.sync()).shown).toEqual(['B  x', 'E ', 'S']);
  });

  it('prepares a named Parse under pgfence_<hash>, with a Close first, its parameter types intact', () => {
    const c = setup('transaction');
    const sent = c.send(serialize.parse({ name: 's1', text: 'SELECT $1::int', types: [23] }), serialize.sync());
    const name = c.serverName('s1');
    expect(name).toMatch(/^pgfence_[0-9a-f]{40}$/);
    expect(sent.shown).toEqual(['C S ', `C S ${name}`, `P ${name} SELECT $1::int`, 'S']);
    const parse = splitMessages(Buffer.concat(sent.out))[2];
    expect(parse && message(parse.type, parse.body)).toEqual(serialize.parse({ name, text: 'SELECT $1::int', types: [23] }));
    expect(c.prepared.size).toBe(1);
    // Both Closes are pgfence's own; the ParseComplete is the client's.
    expect(replies(c.tracker, '331')).toEqual([true, true, false]);
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('renames Bind and Describe of a named statement, leaving portals and unnamed ones alone', () => {
    const c = setup('transaction');
    c.send(serialize.parse({ name: 's1', text: 'SELECT $1::int' }), serialize.sync());
    const name = c.serverName('s1');
    c.tracker.clear();
    const sent = c.send(
      serialize.bind({ portal: 'p1', statement: 's1', values: ['42', null] }),
      serialize.describe({ type: 'S', name: 's1' }),
      serialize.describe({ type: 'P', name: 'p1' }),
      serialize.describe({ type: 'S', name: '' }),
      serialize.bind({ statement: '', values: ['x'] }),
      serialize.execute({ portal: 'p1' }),
      serialize.sync(),
    );
    expect(sent.shown).toEqual([`B p1 ${name}`, `D S ${name}`, 'D P p1', 'D S ', 'B  ', 'E p1', 'S']);
    const bind = splitMessages(Buffer.concat(sent.out))[0];
    expect(bind && message(bind.type, bind.body)).toEqual(serialize.bind({ portal: 'p1', statement: name, values: ['42', null] }));
    expect(replies(c.tracker, '2tTTtn2DC')).toEqual(Array(9).fill(false));
    c.tracker.onReady();
    expect(c.tracker.idle).toBe(true);
  });

  it('prepares quietly on a backend that lacks the statement, before a Bind or a Describe', () => {
    const c = setup('transaction');
    c.send(serialize.parse({ name: 's1', text: 'SELECT 1' }), serialize.sync());
    const name = c.serverName('s1');
    c.rebind();
    c.tracker.clear();
    const sent = c.send(serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.sync());
    expect(sent.shown).toEqual(['C S ', `C S ${name}`, `P ${name} SELECT 1`, `B  ${name}`, 'E ', 'S']);
    expect(replies(c.tracker, '3312DC')).toEqual([true, true, true, false, false, false]);
    c.tracker.onReady();

    // Now held: used as is.
    expect(c.send(serialize.bind({ statement: 's1' })).shown).toEqual([`B  ${name}`]);

    c.rebind();
    c.tracker.clear();
    const described = c.send(serialize.describe({ type: 'S', name: 's1' }), serialize.sync());
    expect(described.shown).toEqual(['C S ', `C S ${name}`, `P ${name} SELECT 1`, `D S ${name}`, 'S']);
    expect(replies(c.tracker, '331tn')).toEqual([true, true, true, false, false]);
  });

  it('passes a Bind of a statement it does not know as the client named it', () => {
    const c = setup('transaction');
    expect(c.send(serialize.bind({ statement: 'never_parsed' })).shown).toEqual(['C S ', 'B  never_parsed']);
  });

  it('evicts past the backend\'s cap, closing the least recently used statement quietly', () => {
    const c = setup('transaction', 2);
    const sent = c.send(
      serialize.parse({ name: 'a', text: 'SELECT 1' }),
      serialize.parse({ name: 'b', text: 'SELECT 2' }),
      serialize.parse({ name: 'c', text: 'SELECT 3' }),
      serialize.sync(),
    );
    const [a, b, cName] = ['a', 'b', 'c'].map((n) => c.serverName(n));
    expect(sent.shown).toEqual([
      'C S ',
      `C S ${a}`, `P ${a} SELECT 1`,
      `C S ${b}`, `P ${b} SELECT 2`,
      `C S ${a}`, `C S ${cName}`, `P ${cName} SELECT 3`,
      'S',
    ]);
    expect(replies(c.tracker, '33131331')).toEqual([true, true, false, true, false, true, true, false]);
    c.tracker.onReady();
    expect(c.prepared.size).toBe(2);

    // a is gone from the server: its next Bind prepares it again and evicts b, now the oldest.
    const again = c.send(serialize.bind({ statement: 'a' }));
    expect(again.shown).toEqual([`C S ${b}`, `C S ${a}`, `P ${a} SELECT 1`, `B  ${a}`]);
  });

  it('maps the client\'s Close of a named statement to a harmless Close, and forgets the name', () => {
    const c = setup('transaction');
    c.send(serialize.parse({ name: 's1', text: 'SELECT 1' }), serialize.sync());
    const name = c.serverName('s1');
    c.tracker.clear();
    const sent = c.send(
      serialize.close({ type: 'S', name: 's1' }),
      serialize.close({ type: 'P', name: 'p1' }),
      serialize.close({ type: 'S', name: '' }),
      serialize.sync(),
    );
    expect(sent.shown).toEqual(['C S pgfence_none', 'C P p1', 'C S ', 'S']);
    // The client asked for these Closes: it gets their CloseCompletes.
    expect(replies(c.tracker, '333')).toEqual([false, false, false]);
    // Other clients of the tenant may still use the server's copy.
    expect(c.prepared.use(name)).toBe(true);
    expect(c.send(serialize.bind({ statement: 's1' })).shown).toEqual(['B  s1']);
  });

  it('gives the same text under two client names one server statement', () => {
    const c = setup('transaction');
    c.send(serialize.parse({ name: 'x', text: 'SELECT 1' }), serialize.parse({ name: 'y', text: 'SELECT 1' }), serialize.sync());
    expect(c.serverName('x')).toBe(c.serverName('y'));
    expect(c.prepared.size).toBe(1);
  });

  it('registers neither a refused Parse nor anything after it up to the Sync', () => {
    const c = setup('transaction');
    const sent = c.send(
      serialize.parse({ name: 'bad', text: 'REFUSE this' }),
      serialize.parse({ name: 'skipped', text: 'SELECT 1' }),
      serialize.sync(),
    );
    expect(sent.shown).toEqual(['C S ', 'E pgfence_rejected_7_1', 'S']);
    expect(() => c.serverName('bad')).toThrow();
    expect(() => c.serverName('skipped')).toThrow();
    expect(c.prepared.size).toBe(0);
  });

  it('prepares a rewritten Parse with its rewritten text', () => {
    const c = setup('transaction');
    const sent = c.send(serialize.parse({ name: 'l', text: 'LISTEN jobs' }), serialize.sync());
    const name = c.serverName('l');
    expect(sent.shown).toEqual(['C S ', `C S ${name}`, `P ${name} LISTEN "acme.jobs"`, 'S']);
  });
});

/**
 * A server session's prepared statements after it runs `shown` (lines as `show` prints them),
 * failing at line `failAt` and then skipping to the next Sync, as Postgres does.
 */
function runOnServer(held: Set<string>, shown: readonly string[], failAt: number | null = null): void {
  let skipping = false;
  shown.forEach((line, i) => {
    if (skipping && line !== 'S') return;
    if (i === failAt) {
      skipping = true;
      return;
    }
    const [type, a, b] = line.split(' ');
    if (type === 'S') skipping = false;
    else if (type === 'C' && a === 'S' && b !== undefined && b !== '') held.delete(b);
    else if (type === 'P' && a !== undefined && a !== '') held.add(a);
  });
}

describe('ClientToServer and the server\'s prepared statements (transaction mode)', () => {
  function withReplies(cap: number) {
    const c = setup('transaction', cap);
    const toClient = new ServerToClient(c.tracker, 'acme', { clientPid: 1 }, c.timer, true);
    toClient.startBinding({ searchPath: '"acme"', superuser: undefined, user: 'pool', allowsSearchPath: () => false, params: new Map(), backendPid: 1, statements: c.prepared });
    const held = new Set<string>();
    /** Sends a batch ending in Sync, runs it on the model server, and answers it (an error at `failAt`). */
    const batch = (messages: Buffer[], failAt: number | null = null): string[] => {
      const { shown } = c.send(...messages);
      runOnServer(held, shown, failAt);
      shown.forEach((line, i) => {
        if (failAt !== null && i >= failAt) return;
        const reply = { P: '1', B: '2', C: '3', E: 'C' }[line[0] as string];
        if (reply !== undefined) toClient.route(reply.charCodeAt(0));
      });
      if (failAt !== null) toClient.inspect(errorMessage({ S: 'ERROR', C: '26000', M: 'prepared statement "nope" does not exist' }));
      toClient.inspect(readyForQueryMessage('I'));
      expect(c.tracker.idle).toBe(true);
      return shown;
    };
    return { c, held, batch };
  }

  it('keeps what the server holds known and within the cap when batches succeed', () => {
    const { c, held, batch } = withReplies(2);
    for (const [name, text] of [['a', 'SELECT 1'], ['b', 'SELECT 2'], ['c', 'SELECT 3'], ['a', 'SELECT 1']] as const) {
      batch([serialize.parse({ name, text }), serialize.bind({ statement: name }), serialize.execute({}), serialize.sync()]);
      expect(held.size).toBeLessThanOrEqual(2);
      expect([...held].every((n) => c.prepared.use(n))).toBe(true);
    }
  });

  it('forgets a statement whose Parse an error skipped, while the server keeps what it held', () => {
    const { c, held, batch } = withReplies(10);
    batch([serialize.parse({ name: 'a', text: 'SELECT 1' }), serialize.sync()]);
    const a = c.serverName('a');
    const shown = batch([serialize.bind({ statement: 'nope' }), serialize.parse({ name: 'b', text: 'SELECT 2' }), serialize.sync()], 0);
    expect(shown).toEqual(['B  nope', `C S ${c.serverName('b')}`, `P ${c.serverName('b')} SELECT 2`, 'S']);
    expect([...held]).toEqual([a]);
    expect(c.prepared.use(c.serverName('b'))).toBe(false);
    expect(c.prepared.use(a)).toBe(true);
  });

  // An eviction Close the server skips after an error is sent again with the next prepare.
  it('keeps a statement whose eviction Close an error skipped within the cap', () => {
    const { c, held, batch } = withReplies(1);
    batch([serialize.parse({ name: 'a', text: 'SELECT 1' }), serialize.sync()]);
    const a = c.serverName('a');
    // The Bind fails (no such statement): the server skips the Close of a that the cap queued.
    const shown = batch([serialize.bind({ statement: 'nope' }), serialize.parse({ name: 'b', text: 'SELECT 2' }), serialize.sync()], 0);
    const b = c.serverName('b');
    expect(shown).toEqual(['B  nope', `C S ${a}`, `C S ${b}`, `P ${b} SELECT 2`, 'S']);
    expect([...held]).toEqual([a]);
    batch([serialize.parse({ name: 'c', text: 'SELECT 3' }), serialize.sync()]);
    // Expected: at most one statement on the server, every one known to pgfence (so it can be evicted).
    // Actual: the server holds a and c; pgfence knows only c.
    expect([...held].filter((n) => !c.prepared.use(n))).toEqual([]);
    expect(held.size).toBeLessThanOrEqual(1);
  });

  // A statement the server may still hold after an error skipped its re-preparing Close + Parse
  // is closed with the next prepare.
  it('keeps a held statement whose re-prepare an error skipped within the cap', () => {
    const { c, held, batch } = withReplies(1);
    batch([serialize.parse({ name: 'a', text: 'SELECT 1' }), serialize.sync()]);
    const a = c.serverName('a');
    const shown = batch([serialize.bind({ statement: 'nope' }), serialize.parse({ name: 'a', text: 'SELECT 1' }), serialize.sync()], 0);
    expect(shown).toEqual(['B  nope', `C S ${a}`, `P ${a} SELECT 1`, 'S']);
    expect([...held]).toEqual([a]);
    batch([serialize.parse({ name: 'c', text: 'SELECT 3' }), serialize.sync()]);
    // Actual: the server holds a and c; pgfence knows only c.
    expect([...held].filter((n) => !c.prepared.use(n))).toEqual([]);
    expect(held.size).toBeLessThanOrEqual(1);
  });
});
