import type { Logger } from 'pino';
import type { TenantMetrics } from '../admin/index.js';
import { clientErrors } from '../frontend/errors.js';
import type { Guard, TenantFence } from '../guard/index.js';
import type { ErrorFields } from '../protocol/build.js';
import type { SqlText } from '../protocol/decode.js';
import { queryFingerprint } from '../frontend/audit.js';
import type { ChannelChange } from './client-channels.js';
import { rewriteChannelStatements, withSqlText } from '../frontend/channels.js';

/** The guard's answer for one SQL text, as the relay acts on it. */
export type Inspection =
  | { refused: ErrorFields }
  | {
      refused: null;
      /** The message with its SQL rewritten (tenant-private channels), or null to send it as is. */
      rewritten: Buffer | null;
      /** SETs to remember and replay (transaction pooling). */
      sets: ReadonlyArray<{ name: string; value: string | null }>;
      /** It may change session state the guard cannot see: reset the backend before anyone else uses it. */
      hidden: boolean;
      /** LISTEN / UNLISTEN of the client's channels (transaction pooling: served by the shared listener). */
      channelChanges: readonly ChannelChange[];
    };

export interface InspectorDeps {
  guard: () => Guard;
  fence: TenantFence;
  tenantId: string;
  metrics: TenantMetrics;
  log: Logger;
  transactionMode: boolean;
}

const NOTHING: Inspection = { refused: null, rewritten: null, sets: [], hidden: false, channelChanges: [] };

/** Judges every Query and Parse of one client: refuses, rewrites, or notes its session effects. */
export class StatementInspector {
  constructor(private readonly deps: InspectorDeps) {}

  /** Counts a message refused without a look at any SQL (fast-path function calls). */
  refuseUnchecked(reason: string): void {
    this.deps.metrics.statement();
    this.deps.metrics.rejected(reason);
  }

  inspect(sql: SqlText): Inspection {
    const { metrics } = this.deps;
    metrics.statement();
    // The guard must read exactly the bytes the server will: no lossy decoding of bad UTF-8.
    if (!sql.validUtf8) {
      metrics.rejected('invalid_encoding');
      return { refused: clientErrors.invalidEncoding() };
    }
    const { analysis, verdict } = this.deps.guard().inspect(sql.text, this.deps.fence);
    if (!verdict.allowed) {
      this.deps.log.warn({ audit: 'statement_rejected', reason: verdict.reason, fingerprint: queryFingerprint(sql.text) }, verdict.message);
      metrics.rejected(verdict.reason);
      return { refused: clientErrors.statementRejected(verdict.sqlstate, verdict.message) };
    }
    const effects = analysis.sessionEffects;
    if (effects.length === 0 && analysis.channels.length === 0) return NOTHING;
    const sets: Array<{ name: string; value: string | null }> = [];
    let hidden = false;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'unsupported':
          if (!this.deps.transactionMode) break;
          metrics.rejected('transaction_pooling');
          return { refused: clientErrors.notInTransactionPooling(effect.what) };
        case 'set':
          sets.push({ name: effect.name, value: effect.value });
          break;
        case 'hidden':
          hidden = true;
          break;
      }
    }
    let rewritten: Buffer | null = null;
    const channelChanges: ChannelChange[] = [];
    if (analysis.channels.length > 0) {
      if (this.deps.transactionMode) {
        for (const st of analysis.channels) if (st.kind !== 'notify') channelChanges.push({ listen: st.kind === 'listen', channel: st.channel });
      }
      const text = sql.message.subarray(sql.start, sql.end);
      const mapped = rewriteChannelStatements(text, analysis.channels, this.deps.tenantId);
      if (!Buffer.isBuffer(mapped)) return { refused: clientErrors.channelNameTooLong(mapped.tooLong) };
      rewritten = withSqlText(sql.message, sql.start, sql.end, mapped);
    }
    return { refused: null, rewritten, sets, hidden, channelChanges };
  }
}
