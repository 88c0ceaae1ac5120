import type { PolicySwitch } from '../config/schema.js';

/**
 * What a SQL text does, independent of who sends it: the schemas it names, the settings it
 * changes, what no tenant may do. Computed once per distinct text and cached; the verdict for a
 * tenant is then a cheap look at these facts.
 */
export interface Analysis {
  /** The text (or a body inside it) did not parse: Postgres would refuse it, the guard fails closed. */
  readonly parseError: string | null;
  /** Every schema named anywhere, as Postgres reads it (unquoted names folded, quoted kept). */
  readonly schemas: ReadonlySet<string>;
  /** Database qualifiers (db.schema.table). */
  readonly catalogs: ReadonlySet<string>;
  /**
   * Settings changed by SET/RESET/set_config or a function's SET clause, lower case; '*' for a
   * RESET ALL or DISCARD ALL that is refused. search_path is here only in the forms refused for every
   * tenant; a literal value in the client's own text is in `searchPaths`, for the tenant's verdict.
   */
  readonly settings: ReadonlySet<string>;
  /** Refusals that hold for every tenant (unless its policy lifts them), in the order they were found. */
  readonly refusals: readonly Refusal[];
  /** Functions called anywhere (bodies and stored expressions included), by their own name, lower case. */
  readonly functions: ReadonlySet<string>;
  /** Parse node names of every statement anywhere in the text (SelectStmt, TruncateStmt, ...). */
  readonly statementKinds: ReadonlySet<string>;
  /** Schemas named as the target of a write, DDL or lock. */
  readonly writtenSchemas: ReadonlySet<string>;
  /** A statement whose targets the guard does not know: any schema it names may be written. */
  readonly writesAnywhere: boolean;
  /**
   * What the client's own statements leave in the session after their transaction ends: settings
   * (value null = back to the default) that transaction pooling replays on every backend, state
   * that cannot follow a client from backend to backend, and code that runs now whose effects the
   * guard cannot see (a tenant's function, a DO block, a procedure, a sequence's currval).
   */
  readonly sessionEffects: readonly SessionEffect[];
  /**
   * LISTEN, UNLISTEN and NOTIFY statements of the client's own text, with their byte range in it:
   * pgfence rewrites them to the tenant's private channel names.
   */
  readonly channels: readonly ChannelStatement[];
  /**
   * The client's text ends with RESET ALL or DISCARD ALL (top-level statements that nothing else
   * follows): allowed because pgfence re-pins the tenant right after the text. 'discard_all' when
   * both are there. Anywhere else they are refused.
   */
  readonly sessionReset: SessionReset | null;
  /**
   * Literal search_path values set by SET, SET LOCAL or set_config() in the client's own text, as
   * Postgres stores them (read them with searchPathSchemas). judge() allows them when they name
   * only the tenant's own schema, its shared schemas, pg_catalog and pg_temp; every other change
   * of search_path (computed, DEFAULT, RESET, in a body or a function's SET clause) is in `settings`.
   */
  readonly searchPaths: readonly string[];
  /** DEALLOCATE statements of the client's own text, in text order. */
  readonly deallocations: readonly Deallocation[];
  /**
   * pg_notify() calls of the client's own text whose channel is a string literal or a parameter,
   * in text order: pgfence maps the channel to the tenant's private one. Any other pg_notify() is refused.
   */
  readonly notifyCalls: readonly NotifyCall[];
}

export type SessionReset = 'reset_all' | 'discard_all';

export interface Deallocation {
  /** The prepared statement's name; null for DEALLOCATE ALL. */
  readonly name: string | null;
  /** Byte offsets of the statement in the UTF-8 text. */
  readonly start: number;
  readonly end: number;
}

export interface NotifyCall {
  /**
   * The channel argument: a string literal (its value, and the byte offsets of its token in the
   * UTF-8 text, quotes included), or the parameter $N (1-based), possibly cast to text.
   */
  readonly channel: { readonly literal: string; readonly start: number; readonly end: number } | { readonly param: number };
}

export interface ChannelStatement {
  readonly kind: 'listen' | 'unlisten' | 'notify';
  /** null for UNLISTEN *. */
  readonly channel: string | null;
  readonly payload: string | null;
  /** Byte offsets of the statement in the UTF-8 text. */
  readonly start: number;
  readonly end: number;
}

export type RefusalReason = 'forbidden_statement' | 'dynamic_sql' | 'pin_change' | 'parser_divergence';

export interface Refusal {
  readonly reason: RefusalReason;
  /** The end-user message, complete ("pgfence: ..."). */
  readonly message: string;
  /** The policy switch that lifts this refusal for a tenant; none: no policy can. */
  readonly lift?: PolicySwitch;
  /** The function or statement kind refused, which a policy may also allow by name (when it has a `lift`). */
  readonly subject?: string;
}

export type SessionEffect =
  | { kind: 'set'; name: string; value: string | null }
  | { kind: 'unsupported'; what: string }
  /** May change session state in ways the analysis cannot see: reset the backend after. */
  | { kind: 'hidden'; what: string };

/** The analysis while it is being built. */
export interface Facts {
  parseError: string | null;
  schemas: Set<string>;
  catalogs: Set<string>;
  settings: Set<string>;
  refusals: Refusal[];
  functions: Set<string>;
  statementKinds: Set<string>;
  writtenSchemas: Set<string>;
  writesAnywhere: boolean;
  sessionEffects: SessionEffect[];
  channels: ChannelStatement[];
  sessionReset: SessionReset | null;
  searchPaths: string[];
  deallocations: Deallocation[];
  notifyCalls: NotifyCall[];
}

export function emptyFacts(): Facts {
  return {
    parseError: null, schemas: new Set(), catalogs: new Set(), settings: new Set(), refusals: [], functions: new Set(),
    statementKinds: new Set(), writtenSchemas: new Set(), writesAnywhere: false, sessionEffects: [], channels: [],
    sessionReset: null, searchPaths: [], deallocations: [], notifyCalls: [],
  };
}

/** Records the schema (and database) of a qualified name given as parts: [[db.]schema.]name. */
export function addQualified(f: Facts, parts: readonly string[]): void {
  if (parts.length >= 2) f.schemas.add(parts[parts.length - 2] as string);
  if (parts.length >= 3) f.catalogs.add(parts[parts.length - 3] as string);
}

/** Records a name of something inside a relation: [[[db.]schema.]table.]column (or trigger, policy...). */
export function addRelationMember(f: Facts, parts: readonly string[]): void {
  addQualified(f, parts.slice(0, -1));
}

const EXPLANATION: Record<RefusalReason, string> = {
  forbidden_statement: 'is not allowed through pgfence',
  dynamic_sql: 'is not allowed (pgfence cannot check what it would touch)',
  pin_change: 'is not allowed (the tenant pin is managed by pgfence)',
  parser_divergence: 'is not allowed (pgfence requires UTF8 and standard_conforming_strings = on)',
};

/**
 * Records that the text is refused for everyone, or for every tenant whose policy does not give
 * `lift`: "pgfence: <what> <why>".
 */
export function refuse(f: Facts, reason: RefusalReason, what: string, lift?: PolicySwitch, subject?: string): void {
  const message = `pgfence: ${what} ${EXPLANATION[reason]}`;
  f.refusals.push(lift === undefined ? { reason, message } : subject === undefined ? { reason, message, lift } : { reason, message, lift, subject });
}

/** Records a refusal whose message is given whole ("pgfence: ..."), when the usual "<what> <why>" would not say why. */
export function refuseWithMessage(f: Facts, reason: RefusalReason, message: string): void {
  f.refusals.push({ reason, message });
}

/**
 * Distinct 'hidden' effects kept per text: one is enough to reset the backend, the rest only tell
 * what ran, and a text calling thousands of functions must not grow the list or cost a scan per call.
 */
const MAX_HIDDEN_EFFECTS = 8;
const hiddenNoted = new WeakMap<Facts, Set<string>>();

/** Records code that runs now and may change session state the guard cannot see (see SessionEffect). */
export function noteHidden(f: Facts, what: string): void {
  let noted = hiddenNoted.get(f);
  if (noted === undefined) hiddenNoted.set(f, (noted = new Set()));
  if (noted.size >= MAX_HIDDEN_EFFECTS || noted.has(what)) return;
  noted.add(what);
  f.sessionEffects.push({ kind: 'hidden', what });
}

const callPositions = new WeakMap<NotifyCall, number>();

/** Records a pg_notify() call that pgfence can map to a tenant channel; `at`: the call's byte offset in the text. */
export function noteNotifyCall(f: Facts, call: NotifyCall, at: number): void {
  callPositions.set(call, at);
  f.notifyCalls.push(call);
}

export function freeze(f: Facts): Analysis {
  Object.freeze(f.refusals);
  Object.freeze(f.sessionEffects);
  Object.freeze(f.channels);
  Object.freeze(f.searchPaths);
  Object.freeze(f.deallocations);
  // Recorded in the order the walk met them; the relay rewrites the text front to back.
  f.notifyCalls.sort((a, b) => (callPositions.get(a) ?? 0) - (callPositions.get(b) ?? 0));
  Object.freeze(f.notifyCalls);
  return Object.freeze(f);
}
