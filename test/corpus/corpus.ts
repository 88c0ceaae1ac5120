import { readFileSync } from 'node:fs';
import { parseSync, scanSync } from 'libpg-query';
import { parse } from 'yaml';
import { z } from 'zod';

/**
 * The attack and legitimate corpora (attacks.yaml, legit.yaml next to this file), validated on
 * load so that a typo in a data file fails loudly instead of silently testing less.
 *
 * Placeholders `{{regclass:schema.name}}` and `{{regprocedure:schema.f(args)}}` stand for the OID
 * of an object of the test database; the live tests resolve them against it, the guard-only
 * tests with `fakeOid` (the guard never looks an OID up).
 */

const ID = /^[a-z0-9][a-z0-9-]*[a-z0-9]$/;

const attackSchema = z
  .object({
    id: z.string().regex(ID),
    /** refused: pgfence answers with its own error; empty: it runs and returns nothing of another tenant. */
    expect: z.enum(['refused', 'empty']),
    why: z.string().min(5),
    sql: z.string().min(1),
    /** Bind values: the entry runs over the extended protocol only. */
    params: z.array(z.string()).optional(),
    /** Which protocols run it; default both, or simple only for a text of several statements. */
    protocols: z.array(z.enum(['simple', 'extended'])).min(1).optional(),
    /** Statements sent through pgfence as acme first (they must be allowed). */
    setup: z.array(z.string()).optional(),
    /** The guard lets this through today: the test is `it.fails`, and this says what is wrong. */
    knownBug: z.string().min(10).optional(),
  })
  .strict();

const legitSchema = z
  .object({
    id: z.string().regex(ID),
    /** Who sends it (which ORM, driver or tool) and what it exercises. */
    why: z.string().min(5),
    sql: z.string().min(1),
    /** Run first on both sides, inside the same transaction as `sql` (txn: wrap). */
    setup: z.array(z.string()).optional(),
    /**
     * rows: deep-equal rows (and command, row count, copy output); shape: column names and row
     * counts only (now(), random(), OIDs of objects created in the transaction); columns: column
     * names only (cluster-wide catalogs that other test files change concurrently).
     */
    compare: z.enum(['rows', 'shape', 'columns']).default('rows'),
    /**
     * wrap: BEGIN, setup, sql, ROLLBACK on each side; self: the text manages its own transaction
     * and must leave nothing behind; none: cannot run in a transaction block, `teardown` undoes it.
     */
    txn: z.enum(['wrap', 'self', 'none']).default('wrap'),
    /** Run directly after each side of a txn: none entry. */
    teardown: z.array(z.string()).optional(),
    /** Data for a COPY ... FROM STDIN. */
    copyIn: z.string().optional(),
    /** pgfence refuses it today although applications send it (the test is it.fails): why that is wrong. */
    knownBug: z.string().min(10).optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.txn !== 'wrap' && e.setup !== undefined) ctx.addIssue({ code: 'custom', message: 'setup needs txn: wrap (it would persist)' });
    if (e.txn !== 'none' && e.teardown !== undefined) ctx.addIssue({ code: 'custom', message: 'teardown is only for txn: none' });
  });

const legitFileSchema = z.object({ fixture: z.string(), statements: z.array(legitSchema) }).strict();

export type Attack = z.infer<typeof attackSchema>;
export type Legit = z.infer<typeof legitSchema>;
export type Protocol = 'simple' | 'extended';

function load(file: string): unknown {
  return parse(readFileSync(new URL(file, import.meta.url), 'utf8'));
}

function assertDistinct<T>(what: string, items: readonly T[], key: (item: T) => string): void {
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new Error(`${what}: duplicate ${k.slice(0, 80)}`);
    seen.add(k);
  }
}

export function loadAttacks(): Attack[] {
  const attacks = z.array(attackSchema).parse(load('./attacks.yaml'));
  assertDistinct('attacks.yaml id', attacks, (a) => a.id);
  assertDistinct('attacks.yaml sql', attacks, (a) => `${a.sql}\0${(a.params ?? []).join('\0')}`);
  return attacks;
}

export function loadLegit(): { fixture: string; statements: Legit[] } {
  const file = legitFileSchema.parse(load('./legit.yaml'));
  assertDistinct('legit.yaml id', file.statements, (e) => e.id);
  assertDistinct('legit.yaml sql', file.statements, (e) => e.sql);
  return file;
}

const PLACEHOLDER = /\{\{(regclass|regprocedure):([^}]+)\}\}/g;

/** Every placeholder of a text, as [type, object name]. */
export function placeholders(text: string): Array<[string, string]> {
  return [...text.matchAll(PLACEHOLDER)].map((m) => [m[1] as string, m[2] as string]);
}

/** Replaces each placeholder with what `oidOf(type, name)` gives. */
export function fillPlaceholders(text: string, oidOf: (type: string, name: string) => string): string {
  return text.replace(PLACEHOLDER, (_m, type: string, name: string) => oidOf(type, name));
}

/** An OID no object of a fresh database has: for guard-only checks, where only its shape matters. */
export const fakeOid = (): string => '16431';

/**
 * True when the text holds more than one statement (the extended protocol takes one). Counted on
 * tokens, so that a text that does not parse is judged too (`SELECT 1; DROP TABLE`).
 */
export function isMultiStatement(sql: string): boolean {
  try {
    return (((parseSync(sql) as unknown as { stmts?: unknown[] }).stmts ?? []).length) > 1;
  } catch {
    try {
      const tokens = scanSync(sql).tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
      return tokens.some((t, i) => t.text === ';' && i < tokens.length - 1);
    } catch {
      return false;
    }
  }
}

/** The protocols an attack runs over. */
export function protocolsOf(a: Attack): Protocol[] {
  if (a.protocols !== undefined) return a.protocols;
  if (a.params !== undefined) return ['extended'];
  return isMultiStatement(a.sql) ? ['simple'] : ['simple', 'extended'];
}
