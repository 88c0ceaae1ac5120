/**
 * What a SQL text does, independent of who sends it: the schemas it names, the settings it
 * changes, what it may not do at all. Computed once per distinct text and cached.
 */
export interface Analysis {
  /** The text did not parse: Postgres would refuse it too, and the guard fails closed. */
  parseError: string | null;
  /** Every schema named anywhere, as Postgres resolves identifiers (folded, unquoted). */
  schemas: Set<string>;
  /** A database qualifier was used (db.schema.table). */
  catalogs: Set<string>;
  /** Settings changed with SET/RESET/set_config (lower case); '*' for RESET ALL / DISCARD ALL. */
  settings: Set<string>;
  /** Statements or functions refused for every tenant, with the reason to give. */
  forbidden: Array<{ reason: 'forbidden_statement' | 'dynamic_sql' | 'parser_divergence'; what: string }>;
  /**
   * What the client's own statements leave in the session after their transaction ends: settings
   * (value null = back to the default) that transaction pooling replays on every backend, and
   * state that cannot follow a client from backend to backend.
   */
  sessionEffects: SessionEffect[];
}

export type SessionEffect =
  | { kind: 'set'; name: string; value: string | null }
  | { kind: 'unsupported'; what: string };

export function emptyAnalysis(): Analysis {
  return { parseError: null, schemas: new Set(), catalogs: new Set(), settings: new Set(), forbidden: [], sessionEffects: [] };
}
