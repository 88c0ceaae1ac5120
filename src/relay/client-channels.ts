import type { Notification } from '../backend/listener.js';
import { serverChannel } from '../frontend/channels.js';
import type { HeldListener } from '../placement/listeners.js';

/** A LISTEN or UNLISTEN of the client (channel null: UNLISTEN *), applied when its transaction commits. */
export interface ChannelChange {
  listen: boolean;
  channel: string | null;
}

/**
 * The channels one client listens on in transaction pooling, through the shared listener of its
 * tenant's placement (held from its first channel to its last): the client's own names, mapped
 * to the tenant's private server channels.
 */
export class ClientChannels {
  private readonly listening = new Set<string>();
  private readonly handler: (notification: Notification) => void;
  private held: HeldListener | null = null;

  constructor(
    /** The listener where the tenant's data lives (src/placement/listeners.ts). */
    private readonly hold: () => HeldListener,
    private readonly tenantId: string,
    deliver: (message: Buffer) => void,
  ) {
    this.handler = (notification) => deliver(notification.message);
  }

  /** Resolves once the listener has run what these changes asked of the server. */
  apply(changes: readonly ChannelChange[]): Promise<void> {
    const commands: Array<Promise<void>> = [];
    for (const change of changes) {
      if (change.channel === null) {
        this.clear();
        continue;
      }
      const channel = serverChannel(this.tenantId, change.channel);
      if (change.listen && !this.listening.has(channel)) {
        this.held ??= this.hold();
        this.listening.add(channel);
        commands.push(this.held.listener.subscribe(channel, this.handler));
      } else if (!change.listen && this.listening.delete(channel)) {
        this.held?.listener.unsubscribe(channel, this.handler);
        if (this.listening.size === 0) this.letGo();
      }
    }
    return Promise.all(commands).then(() => undefined);
  }

  /**
   * The tenant moved (`pgfence tenant move`): its channels are listened on where it lives now,
   * through the listener `hold` gives from here on; the old one is let go.
   */
  relisten(): Promise<void> {
    const old = this.held;
    if (old === null) return Promise.resolve();
    const held = this.hold();
    this.held = held;
    const commands = [...this.listening].map((channel) => {
      old.listener.unsubscribe(channel, this.handler);
      return held.listener.subscribe(channel, this.handler);
    });
    old.letGo();
    return Promise.all(commands).then(() => undefined);
  }

  /** UNLISTEN *, or the client is gone. */
  clear(): void {
    for (const channel of this.listening) this.held?.listener.unsubscribe(channel, this.handler);
    this.listening.clear();
    this.letGo();
  }

  private letGo(): void {
    this.held?.letGo();
    this.held = null;
  }
}
