import type { Logger } from 'pino';
import type { TenantMetrics } from '../admin/index.js';
import { queryFingerprint } from '../frontend/audit.js';
import { channelEdits, mappedChannel, type TextEdit } from '../frontend/channels.js';
import { clientErrors } from '../frontend/errors.js';
import type { Analysis, Deallocation, Guard, SessionReset, TenantFence } from '../guard/index.js';
import type { ErrorFields } from '../protocol/build.js';
import type { SqlText } from '../protocol/decode.js';
import { quoteLiteral } from '../tenancy/index.js';
import type { ChannelChange } from './client-channels.js';

/** The guard's answer for one SQL text, as the relay acts on it. */
export type Inspection =
  | { refused: ErrorFields }
  | {
      refused: null;
      /** Rewrites of the text (tenant-private channel names), applied by the relay with its own. */
      edits: readonly TextEdit[];
      /** SETs to remember and replay (transaction pooling). */
      sets: ReadonlyArray<{ name: string; value: string | null }>;
      /** It may change session state the guard cannot see: reset the backend before anyone else uses it. */
      hidden: boolean;
      /** LISTEN / UNLISTEN of the client's channels (transaction pooling: served by the shared listener). */
      channelChanges: readonly ChannelChange[];
      /** The text ends with RESET ALL or DISCARD ALL: pgfence re-pins right after it. */
      reset: SessionReset | null;
      /** DEALLOCATE statements of the text (transaction pooling maps them to the client's statements). */
      deallocations: readonly Deallocation[];
      /** 1-based parameters that carry a pg_notify channel: their bound values get the tenant's prefix. */
      notifyParams: readonly number[];
    };

export interface InspectorDeps {
  guard: () => Guard;
  fence: TenantFence;
  tenantId: string;
  metrics: TenantMetrics;
  log: Logger;
  transactionMode: boolean;
}

const NOTHING: Inspection = Object.freeze({
  refused: null,
  edits: [],
  sets: [],
  hidden: false,
  channelChanges: [],
  reset: null,
  deallocations: [],
  notifyParams: [],
});

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
    if (plain(analysis)) return NOTHING;
    return this.effects(analysis);
  }

  private effects(analysis: Analysis): Inspection {
    const sets: Array<{ name: string; value: string | null }> = [];
    let hidden = false;
    for (const effect of analysis.sessionEffects) {
      switch (effect.kind) {
        case 'unsupported':
          if (!this.deps.transactionMode) break;
          this.deps.metrics.rejected('transaction_pooling');
          return { refused: clientErrors.notInTransactionPooling(effect.what) };
        case 'set':
          sets.push({ name: effect.name, value: effect.value });
          break;
        case 'hidden':
          hidden = true;
          break;
      }
    }
    const tenant = this.deps.tenantId;
    const channels = channelEdits(analysis.channels, tenant);
    if (!Array.isArray(channels)) return { refused: clientErrors.channelNameTooLong(channels.tooLong) };
    const edits: TextEdit[] = [...channels];
    const notifyParams: number[] = [];
    for (const call of analysis.notifyCalls) {
      if ('param' in call.channel) {
        notifyParams.push(call.channel.param);
        continue;
      }
      const mapped = mappedChannel(tenant, call.channel.literal);
      if (typeof mapped !== 'string') return { refused: clientErrors.channelNameTooLong(mapped.tooLong) };
      edits.push({ start: call.channel.start, end: call.channel.end, text: quoteLiteral(mapped) });
    }
    const channelChanges: ChannelChange[] = [];
    if (this.deps.transactionMode) {
      for (const st of analysis.channels) if (st.kind !== 'notify') channelChanges.push({ listen: st.kind === 'listen', channel: st.channel });
    }
    return { refused: null, edits, sets, hidden, channelChanges, reset: analysis.sessionReset, deallocations: analysis.deallocations, notifyParams };
  }
}

/** Nothing to rewrite, replay or watch: the common case, answered without allocating. */
function plain(a: Analysis): boolean {
  return (
    a.sessionEffects.length === 0 &&
    a.channels.length === 0 &&
    a.notifyCalls.length === 0 &&
    a.deallocations.length === 0 &&
    a.sessionReset === null
  );
}
