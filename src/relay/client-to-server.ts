import { serialize } from 'pg-protocol';
import type { QueryTimer } from '../admin/index.js';
import type { PreparedStatements } from '../backend/prepared-statements.js';
import { clientErrors } from '../frontend/errors.js';
import type { ErrorFields } from '../protocol/build.js';
import { Frontend as F } from '../protocol/codes.js';
import { type TextEdit, withSqlEdits } from '../frontend/channels.js';
import type { Deallocation, SessionReset } from '../guard/index.js';
import { parseMessage, queryText } from '../protocol/decode.js';
import { quoteIdent } from '../tenancy/index.js';
import type { FramedMessage } from '../protocol/framer.js';
import type { ChannelChange } from './client-channels.js';
import { type ReplyTracker, Sent } from './reply-tracker.js';
import type { Inspection, StatementInspector } from './statement-inspector.js';
import {
  bindStatementName,
  type ClientStatements,
  closeStatementMessage,
  describedTarget,
  describeStatementMessage,
  parseMessageFor,
  prefixBindParameters,
  renameBind,
  type ServerStatement,
} from './statements.js';

/** Who hears of what ClientToServer sends (the relay): one object, not a closure per session. */
export interface ClientToServerHost {
  /** The statement that pins a reset session again (the tenant and the client's startup settings). */
  repinSql(): string;
  /** A re-pin follows a client's reset. */
  repinSent(): void;
  /** A statement left settings or channels that a ROLLBACK would undo. */
  effectsSent(): void;
}

/** What became of a batch of client messages. */
export type Relayed = 'sent' | 'terminate' | { violation: string };

/** A setting the client changed, applied to its settings when the binding ends without an error. */
export interface PendingSet {
  name: string;
  value: string | null;
}

/**
 * Client → server, for one client: every message the client sends while it holds a backend
 * goes through `relay`, which decides what the server gets instead (synchronously, no I/O):
 * the guard's verdict on every Query and Parse, a stand-in for a refused one, tenant-private
 * channel names, and, in transaction pooling, the client's named statements under server names.
 * Each message sent is announced to the reply tracker so its reply can be placed.
 */
export class ClientToServer {
  /** Extended-protocol messages were sent since the last Sync. */
  private extendedOpen = false;
  /** After a refused Parse, messages are dropped up to the next Sync, as the server does after an error. */
  private skippingToSync = false;
  private standIns = 0;
  /** The backend was just bound: its unnamed statement, if any, is the previous holder's. */
  private unnamedForeign = false;
  /**
   * The previous holder's unnamed statement is still on the server and this binding's first
   * message will replace it (an unnamed Parse or a Query, which drop it first thing), unless the
   * guard refuses that message: then the Close goes out before the refusal.
   */
  private unnamedCloseOwed = false;
  private sets: PendingSet[] = [];
  private hidden = false;
  private channelChanges: ChannelChange[] = [];
  /**
   * Parameters of the client's statements ('' = unnamed) whose bound values are pg_notify
   * channels; null until one has any (most clients never do, and an idle client keeps no map).
   */
  private notifyParams: Map<string, readonly number[]> | null = null;

  constructor(
    private readonly sessionId: number,
    private readonly tenantId: string,
    private readonly tracker: ReplyTracker,
    private readonly inspector: StatementInspector,
    /** The client's named statements, kept by pgfence in transaction pooling; null in session mode. */
    private readonly statements: ClientStatements | null,
    /** Round-trip latency by tenant: started at each message one ReadyForQuery answers. */
    private readonly timer: QueryTimer,
    private readonly host: ClientToServerHost,
  ) {}

  /** A batch was begun and not yet closed by Sync. */
  get midBatch(): boolean {
    return this.extendedOpen || this.skippingToSync;
  }

  /** A new backend is bound for this client. */
  startBinding(): void {
    this.sets = [];
    this.hidden = false;
    this.channelChanges = [];
    this.unnamedForeign = this.statements !== null;
    this.unnamedCloseOwed = false;
    this.extendedOpen = false;
    this.skippingToSync = false;
  }

  /** What the binding left in the server session: settings to replay, channels, and whether it needs a reset. */
  bindingEffects(): { sets: readonly PendingSet[]; hidden: boolean; channelChanges: readonly ChannelChange[] } {
    return { sets: this.sets, hidden: this.hidden, channelChanges: this.channelChanges };
  }

  /** Appends to `out` what the server gets for `messages`. */
  relay(messages: readonly FramedMessage[], prepared: PreparedStatements, out: Buffer[]): Relayed {
    if (this.unnamedForeign) {
      this.unnamedForeign = false;
      if (prepared.unnamedLeft) {
        // Dropped first thing, while the server is sure to run it (an error in this client's batch
        // would make it skip a later Close, and leave the previous holder's statement bindable),
        // unless the first message drops it itself.
        if (replacesUnnamed(messages[0])) this.unnamedCloseOwed = true;
        else this.closeUnnamed(out, prepared);
      }
    }
    for (const msg of messages) {
      if (this.skippingToSync && msg.type !== F.Sync) continue;
      switch (msg.type) {
        case F.Query:
          this.relayQuery(msg.bytes, out, prepared);
          break;
        case F.Parse:
          this.extendedOpen = true;
          this.relayParse(msg.bytes, out, prepared);
          break;
        case F.Bind:
          this.extendedOpen = true;
          this.relayBind(msg.bytes, out, prepared);
          break;
        case F.Describe:
          this.extendedOpen = true;
          this.relayDescribe(msg.bytes, out, prepared);
          break;
        case F.Close:
          this.extendedOpen = true;
          this.relayClose(msg.bytes, out);
          break;
        case F.Execute:
          this.extendedOpen = true;
          appendBytes(out, msg.bytes);
          this.tracker.expect(Sent.Execute);
          break;
        case F.Sync:
          this.timer.sent();
          this.extendedOpen = false;
          this.skippingToSync = false;
          appendBytes(out, msg.bytes);
          this.tracker.expect(Sent.Sync);
          break;
        case F.Flush:
        case F.CopyData:
        case F.CopyDone:
        case F.CopyFail:
          appendBytes(out, msg.bytes);
          break;
        case F.FunctionCall:
          // Fast-path calls name functions by OID, out of the guard's sight (set_config included).
          this.inspector.refuseUnchecked('function_call');
          this.timer.sent();
          this.refuse(clientErrors.functionCallRefused(), out);
          out.push(serialize.sync());
          this.tracker.expect(Sent.Sync);
          break;
        case F.Terminate:
          return 'terminate';
        default:
          return { violation: `unexpected message type ${JSON.stringify(String.fromCharCode(msg.type))}` };
      }
    }
    return 'sent';
  }

  /** Close of the unnamed statement, which the server runs whatever state the session is in. */
  private closeUnnamed(out: Buffer[], prepared: PreparedStatements): void {
    this.unnamedCloseOwed = false;
    prepared.unnamedLeft = false;
    out.push(closeStatementMessage(''));
    this.tracker.expect(Sent.Close, true);
  }

  private relayQuery(bytes: Buffer, out: Buffer[], prepared: PreparedStatements): void {
    this.timer.sent();
    const sql = queryText(bytes);
    const inspection = this.inspector.inspect(sql);
    if (inspection.refused !== null) {
      if (this.unnamedCloseOwed) this.closeUnnamed(out, prepared);
      this.refuse(inspection.refused, out);
      out.push(serialize.sync());
      this.tracker.expect(Sent.Sync);
      return;
    }
    this.note(inspection);
    const edits = [...inspection.edits, ...this.deallocate(inspection.deallocations, out, prepared)];
    appendBytes(out, edits.length === 0 ? bytes : withSqlEdits(bytes, sql.start, sql.end, edits));
    this.tracker.expect(Sent.Query);
    // A simple Query drops the unnamed statement before it runs (exec_simple_query).
    this.unnamedCloseOwed = false;
    prepared.unnamedLeft = false;
    if (inspection.reset !== null) this.repin(inspection.reset, out, prepared);
  }

  /**
   * After a client's RESET ALL or DISCARD ALL (the last statements of its text, the guard makes
   * sure), pgfence pins the session again in the same write, so whatever the client sends next
   * runs pinned. Its replies are pgfence's own; the client's settings are its startup ones again.
   */
  private repin(reset: SessionReset, out: Buffer[], prepared: PreparedStatements): void {
    out.push(serialize.query(this.host.repinSql()));
    this.tracker.expect(Sent.Query, true);
    this.host.repinSent();
    this.sets = [{ name: '*', value: null }];
    this.hidden = true;
    if (reset === 'discard_all') {
      // Gone with the session: every prepared statement, the server's copies of pgfence's included.
      prepared.clear();
      this.statements?.clear();
      this.notifyParams = null;
      this.channelChanges.push({ listen: false, channel: null });
    }
  }

  /**
   * Transaction pooling: a client's DEALLOCATE names its own statement, which the server holds
   * under pgfence's name; the text is rewritten to that name (preparing it quietly first where
   * this backend lacks it), and DEALLOCATE ALL forgets every statement. A name the client never
   * prepared stays as it is, so the server's error names the client's own statement.
   */
  private deallocate(deallocations: readonly Deallocation[], out: Buffer[], prepared: PreparedStatements): TextEdit[] {
    const statements = this.statements;
    if (statements === null || deallocations.length === 0) return [];
    const edits: TextEdit[] = [];
    for (const d of deallocations) {
      if (d.name === null) {
        statements.clear();
        prepared.clear();
        this.notifyParams = null;
        continue;
      }
      const entry = statements.lookup(d.name);
      if (entry === undefined) continue;
      if (!prepared.use(entry.serverName)) this.prepare(entry, out, prepared, true);
      prepared.forget(entry.serverName);
      statements.forget(d.name);
      this.notifyParams?.delete(d.name);
      edits.push({ start: d.start, end: d.end, text: ` DEALLOCATE ${quoteIdent(entry.serverName)}` });
    }
    return edits;
  }

  private relayParse(original: Buffer, out: Buffer[], prepared: PreparedStatements): void {
    const { name, sql } = parseMessage(original);
    const inspection = this.inspector.inspect(sql);
    const refused = inspection.refused ?? (inspection.reset !== null ? clientErrors.resetNotInExtendedProtocol() : null);
    if (refused !== null) {
      if (this.unnamedCloseOwed) this.closeUnnamed(out, prepared);
      this.refuse(refused, out);
      this.skippingToSync = true;
      return;
    }
    if (inspection.refused !== null) return;
    this.note(inspection);
    if (inspection.notifyParams.length > 0) (this.notifyParams ??= new Map()).set(name, inspection.notifyParams);
    else this.notifyParams?.delete(name);
    const edits = [...inspection.edits, ...this.deallocate(inspection.deallocations, out, prepared)];
    const bytes = edits.length === 0 ? original : withSqlEdits(original, sql.start, sql.end, edits);
    if (this.statements === null || name === '') {
      appendBytes(out, bytes);
      this.tracker.expect(Sent.Parse);
      // The server drops the previous unnamed statement before it parses this one, whether the parse succeeds or not.
      if (name === '') {
        this.unnamedCloseOwed = false;
        prepared.unnamedLeft = true;
      }
      return;
    }
    // Transaction pooling: the statement is prepared under its server-side name, replacing any
    // copy this backend holds (Close of a missing statement is not an error).
    this.prepare(this.statements.register(name, bytes), out, prepared, false);
  }

  private relayBind(original: Buffer, out: Buffer[], prepared: PreparedStatements): void {
    const statement = bindStatementName(original);
    const channels = this.notifyParams?.get(statement);
    const bytes = channels === undefined ? original : prefixBindParameters(original, channels, `${this.tenantId}.`);
    const entry = statement === '' || this.statements === null ? undefined : this.statements.lookup(statement);
    if (entry === undefined) {
      appendBytes(out, bytes);
    } else {
      if (!prepared.use(entry.serverName)) this.prepare(entry, out, prepared, true);
      out.push(renameBind(bytes, entry.serverName));
    }
    this.tracker.expect(Sent.Bind);
  }

  private relayDescribe(bytes: Buffer, out: Buffer[], prepared: PreparedStatements): void {
    const target = this.statements === null ? null : describedTarget(bytes);
    const entry = target?.kind === 'S' && target.name !== '' ? this.statements?.lookup(target.name) : undefined;
    if (entry === undefined) {
      appendBytes(out, bytes);
    } else {
      if (!prepared.use(entry.serverName)) this.prepare(entry, out, prepared, true);
      out.push(describeStatementMessage(entry.serverName));
    }
    this.tracker.expect(Sent.Describe);
  }

  private relayClose(bytes: Buffer, out: Buffer[]): void {
    const target = describedTarget(bytes);
    if (target.kind === 'S') this.notifyParams?.delete(target.name);
    if (this.statements !== null && target.kind === 'S' && target.name !== '') {
      // Other clients of the tenant may use the server-side statement: only the client's name goes.
      this.statements.forget(target.name);
      out.push(closeStatementMessage('pgfence_none'));
    } else {
      appendBytes(out, bytes);
    }
    this.tracker.expect(Sent.Close);
  }

  /**
   * Prepares a statement under its server name: Close first (the server may hold a copy pgfence
   * has lost track of), the Parse, and a Close for each statement the backend's cap evicts.
   * `quiet` when the client did not ask for it (its replies are pgfence's own).
   */
  private prepare(entry: ServerStatement, out: Buffer[], prepared: PreparedStatements, quiet: boolean): void {
    for (const evicted of prepared.add(entry.serverName)) {
      out.push(closeStatementMessage(evicted));
      this.tracker.expect(Sent.Close, true, evicted);
    }
    out.push(closeStatementMessage(entry.serverName), parseMessageFor(entry.serverName, entry.body));
    // Named on both: if an error makes the server skip them, a copy it held may still be there.
    this.tracker.expect(Sent.Close, true, entry.serverName);
    this.tracker.expect(Sent.Parse, quiet, entry.serverName);
  }

  private note(inspection: Inspection & { refused: null }): void {
    if (inspection.sets.length > 0 || inspection.channelChanges.length > 0) this.host.effectsSent();
    if (inspection.sets.length > 0) this.sets.push(...inspection.sets);
    if (inspection.hidden) this.hidden = true;
    if (inspection.channelChanges.length > 0) this.channelChanges.push(...inspection.channelChanges);
  }

  /**
   * Stands in for a refused message: an Execute of a portal that cannot exist makes the server
   * itself fail at this point of the batch, so the transaction state and the ordering of every
   * other reply stay exactly what Postgres would produce; its error is swapped for ours.
   */
  private refuse(error: ErrorFields, out: Buffer[]): void {
    const marker = `pgfence_rejected_${this.sessionId}_${++this.standIns}`;
    out.push(serialize.execute({ portal: marker }));
    this.tracker.expect(Sent.Execute, false, { marker, error });
  }
}

/** An unnamed Parse or a simple Query: the server drops its unnamed statement first thing. */
function replacesUnnamed(msg: FramedMessage | undefined): boolean {
  if (msg === undefined) return false;
  if (msg.type === F.Query) return true;
  // Parse: type, length, then the statement name; an empty name is a lone NUL.
  return msg.type === F.Parse && msg.bytes[5] === 0;
}

/** Appends a message, merging it into the previous part when it directly follows it in memory. */
function appendBytes(out: Buffer[], bytes: Buffer): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
    out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
  } else {
    out.push(bytes);
  }
}
