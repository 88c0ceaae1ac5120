import type { Facts } from './analysis.js';

/** Where in the text the walker is, and how to look at SQL found inside the statement. */
export interface Scope {
  readonly facts: Facts;
  /** The statement runs now in the client's session (a DO block does; a function body is kept for later). */
  readonly runsNow: boolean;
  /** The text of the statement being walked: the PL/pgSQL parser needs the whole CREATE FUNCTION. */
  readonly statementText: string;
  /** A statement of the client's own text; null for SQL found inside one (bodies). */
  readonly clientStatement: ClientStatement | null;
  /** Inside CREATE VIEW: a view over pg_settings would make it writable. */
  readonly inView: boolean;
  /** Inside PREPARE: its $N are the arguments of a later EXECUTE, not the client's Bind values. */
  readonly inPrepare: boolean;
  /** Parses SQL text found inside the statement (bodies, type names in literals) and walks it into the same facts. */
  walkText(sql: string, runsNow: boolean, what: string): void;
}

export interface ClientStatement {
  /** Byte range of the statement in the UTF-8 text. */
  readonly start: number;
  readonly end: number;
  /** Every statement after it in the text is a RESET ALL or DISCARD ALL (or there is none). */
  readonly onlyResetsFollow: boolean;
}
