import { loadModule } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { type Analysis, emptyAnalysis } from './analysis.js';
import { PIN_SETTINGS, SYSTEM_SCHEMAS } from './rules.js';
import { walkSqlText } from './walk.js';

export interface TenantFence {
  /** The tenant's own schema; null in row mode. */
  ownSchema: string | null;
  sharedSchemas: readonly string[];
  tenantGuc: string;
}

export type RejectReason = 'parse_error' | 'foreign_schema' | 'foreign_database' | 'pin_change' | 'forbidden_statement' | 'dynamic_sql' | 'parser_divergence';

export type Verdict =
  | { allowed: true }
  | { allowed: false; sqlstate: string; reason: RejectReason; message: string };

const ALLOWED: Verdict = { allowed: true };
const TEMP_SCHEMA = /^pg_(toast_)?temp_\d+$/;

/**
 * The SQL guard: parses with the real Postgres parser (libpg-query), caches the tenant-independent
 * analysis per SQL text, and judges it against a tenant's fence.
 */
export class Guard {
  private readonly cache: LRUCache<string, Analysis> | null;

  private constructor(cacheSize: number) {
    this.cache = cacheSize > 0 ? new LRUCache({ max: cacheSize }) : null;
  }

  static async create(opts: { cacheSize: number }): Promise<Guard> {
    await loadModule();
    return new Guard(opts.cacheSize);
  }

  analyze(sql: string): Analysis {
    const cached = this.cache?.get(sql);
    if (cached !== undefined) return cached;
    const analysis = emptyAnalysis();
    try {
      walkSqlText(sql, analysis);
    } catch (error) {
      analysis.parseError = `analysis failed: ${(error as Error).message}`;
    }
    this.cache?.set(sql, analysis);
    return analysis;
  }

  check(sql: string, fence: TenantFence): Verdict {
    return judge(this.analyze(sql), fence);
  }
}

export function judge(a: Analysis, fence: TenantFence): Verdict {
  if (a.parseError !== null) {
    return reject('42601', 'parse_error', `pgfence: could not parse statement: ${a.parseError}`);
  }
  const first = a.forbidden[0];
  if (first !== undefined) {
    if (first.reason === 'parser_divergence') {
      return reject('0A000', 'parser_divergence', `pgfence: ${first.what} is not allowed (pgfence requires UTF8 and standard_conforming_strings)`);
    }
    return reject('42501', first.reason, `pgfence: ${first.what} is not allowed through pgfence`);
  }
  for (const setting of a.settings) {
    if (setting === '*') return reject('42501', 'pin_change', 'pgfence: RESET ALL and DISCARD ALL are not allowed (the tenant pin is managed by pgfence)');
    if (PIN_SETTINGS.has(setting) || setting === fence.tenantGuc.toLowerCase()) {
      return reject('42501', 'pin_change', `pgfence: changing ${setting} is not allowed (the tenant pin is managed by pgfence)`);
    }
  }
  for (const catalog of a.catalogs) {
    return reject('42501', 'foreign_database', `pgfence: cross-database reference "${catalog}" is not allowed`);
  }
  for (const schema of a.schemas) {
    if (schema === fence.ownSchema || SYSTEM_SCHEMAS.has(schema) || fence.sharedSchemas.includes(schema)) continue;
    const what = TEMP_SCHEMA.test(schema) ? `another session's temporary schema "${schema}"` : `schema "${schema}"`;
    return reject('42501', 'foreign_schema', `pgfence: access to ${what} is not allowed for this tenant`);
  }
  return ALLOWED;
}

function reject(sqlstate: string, reason: RejectReason, message: string): Verdict {
  return { allowed: false, sqlstate, reason, message };
}
