import type { FramedMessage } from '../protocol/framer.js';
import { Binding } from './binding.js';

/** Session pooling: one backend from connect to close, pinned once, reset when it goes back. */
export class SessionModeBinding extends Binding {
  async open(): Promise<ReadonlyMap<string, string> | null> {
    const backend = await this.acquire();
    return backend === null ? null : new Map(backend.params);
  }

  get waiting(): boolean {
    return false;
  }

  send(messages: readonly FramedMessage[]): void {
    const { relay, host } = this.deps;
    const backend = relay.backend;
    if (backend === null) return;
    const result = relay.send(messages);
    if (result === 'terminate') host.clientTerminated();
    else if (result !== 'sent') host.violation(result.violation);
    else if (backend.needsDrain) {
      host.pauseClient();
      backend.onceDrained(() => host.resumeClient());
    }
  }

  afterServerBatch(): null {
    return null;
  }

  close(reusable: boolean): void {
    this.giveBack(reusable && this.deps.relay.idle, true);
  }
}
