import type { FramedMessage } from '../protocol/framer.js';
import { Binding } from './binding.js';

/** Session pooling: one backend from connect to close, pinned once, reset when it goes back. */
export class SessionModeBinding extends Binding {
  async open(): Promise<Buffer | null> {
    const backend = await this.acquire();
    return backend === null ? null : backend.parameterStatusMessages();
  }

  get waiting(): boolean {
    return false;
  }

  send(messages: readonly FramedMessage[]): void {
    this.relayBatch(messages);
  }

  afterServerBatch(): null {
    return null;
  }

  close(reusable: boolean): void {
    this.giveBack(reusable && this.deps.relay.idle, true);
  }
}
