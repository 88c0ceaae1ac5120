import type { ChannelListener, Notification } from '../backend/listener.js';
import { serverChannel } from '../frontend/channels.js';

/** A LISTEN or UNLISTEN of the client (channel null: UNLISTEN *), applied when its transaction commits. */
export interface ChannelChange {
  listen: boolean;
  channel: string | null;
}

/**
 * The channels one client listens on in transaction pooling, through the shared listener
 * connection: the client's own names, mapped to the tenant's private server channels.
 */
export class ClientChannels {
  private readonly listening = new Set<string>();
  private readonly handler: (notification: Notification) => void;

  constructor(
    private readonly listener: ChannelListener,
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
        this.listening.add(channel);
        commands.push(this.listener.subscribe(channel, this.handler));
      } else if (!change.listen && this.listening.delete(channel)) {
        this.listener.unsubscribe(channel, this.handler);
      }
    }
    return Promise.all(commands).then(() => undefined);
  }

  /** UNLISTEN *, or the client is gone. */
  clear(): void {
    for (const channel of this.listening) this.listener.unsubscribe(channel, this.handler);
    this.listening.clear();
  }
}
