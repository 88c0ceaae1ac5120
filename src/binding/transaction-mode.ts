import { Frontend as F } from '../protocol/codes.js';
import type { FramedMessage } from '../protocol/framer.js';
import { Binding } from './binding.js';

/** A client that sends this much while it waits for a backend is paused until it gets one. */
const QUEUED_BYTES_BEFORE_PAUSE = 1024 * 1024;

/**
 * Transaction pooling: a backend from the first message of a transaction until ReadyForQuery
 * says idle; messages that arrive while none is free wait in a queue. Settings the client SETs
 * are remembered and replayed with the pin; a binding that left anything else behind marks its
 * backend dirty, so it is reset before anyone else uses it.
 */
export class TransactionModeBinding extends Binding {
  private queued: FramedMessage[] = [];
  private queuedBytes = 0;
  private acquiring = false;

  async open(): Promise<Buffer | null> {
    // Pinning once at connect checks the schema and the client's settings, and yields the
    // ParameterStatus messages the client is greeted with; the backend goes back at once.
    const backend = await this.acquire();
    if (backend === null) return null;
    const params = backend.parameterStatusMessages();
    void this.release();
    return params;
  }

  get waiting(): boolean {
    return this.acquiring || this.queued.length > 0;
  }

  send(messages: readonly FramedMessage[]): void {
    const { relay, host } = this.deps;
    if (relay.backend !== null && !this.acquiring) {
      this.sendNow(messages);
      return;
    }
    if (!this.waiting && messages[0]?.type !== F.Terminate && (this.deps.paused?.() ?? null) === null) {
      let ready = false;
      try {
        ready = this.acquirePinnedNow() !== null;
      } catch (error) {
        host.failBinding(error);
        return;
      }
      if (ready) {
        this.sendNow(messages);
        return;
      }
    }
    for (const msg of messages) {
      if (msg.type === F.Terminate && !this.waiting) {
        host.clientTerminated();
        return;
      }
      this.queued.push(msg);
      this.queuedBytes += msg.bytes.length;
    }
    if (this.queuedBytes > QUEUED_BYTES_BEFORE_PAUSE) host.pauseClient();
    if (!this.acquiring) void this.acquireForQueued();
  }

  afterServerBatch(): Promise<void> | null {
    return this.deps.relay.idle ? this.release() : null;
  }

  close(reusable: boolean): void {
    const { relay } = this.deps;
    if (relay.backend === null) return;
    if (reusable && relay.idle) this.release();
    else this.giveBack(false, true);
  }

  /**
   * The first message of a transaction binds a backend for it. Reading goes on while the backend
   * is acquired (usually at once): pausing and resuming the socket for every transaction costs
   * more than it saves. A client that piles up messages while it waits is paused instead.
   */
  private async acquireForQueued(): Promise<void> {
    const { host } = this.deps;
    this.acquiring = true;
    try {
      const backend = await this.acquire();
      this.acquiring = false;
      if (backend === null || host.closed) return;
      const queued = this.queued;
      const wasPaused = this.queuedBytes > QUEUED_BYTES_BEFORE_PAUSE;
      this.queued = [];
      this.queuedBytes = 0;
      this.sendNow(queued);
      if (wasPaused && !host.closed && !backend.needsDrain) host.resumeClient();
    } catch (error) {
      this.acquiring = false;
      host.failBinding(error);
    }
  }

  private sendNow(messages: readonly FramedMessage[]): void {
    this.relayBatch(messages, () => !this.acquiring);
  }

  /**
   * The transaction is over: settings it changed are kept, and channels it listened on are
   * listened on for the client (the promise: once they are); anything else it left marks the
   * backend. A failed or rolled-back binding keeps nothing.
   */
  private release(): Promise<void> | null {
    const { relay, settings } = this.deps;
    const backend = relay.backend;
    if (backend === null) return null;
    const { sets, hidden, channelChanges } = relay.toServer.bindingEffects();
    let listening: Promise<void> | null = null;
    if (!relay.toClient.failed && !relay.toClient.rolledBack) {
      settings.apply(sets);
      if (channelChanges.length > 0) listening = this.deps.channels?.apply(channelChanges) ?? null;
    }
    // A search_path of the client's own may put its schema before pg_catalog, where a function of
    // the tenant's could stand in for a built-in the guard took as one: every binding is reset.
    const ownSearchPath = settings.values.has('search_path');
    if (sets.length > 0 || hidden || channelChanges.length > 0 || relay.toClient.changedParameters || ownSearchPath) backend.markDirty();
    this.giveBack(true, backend.dirty || this.deps.config().pool.reset === 'always');
    return listening;
  }
}
