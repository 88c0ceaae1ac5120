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
  /** The server channels listened on, and the listener's handle on this client: null until the first LISTEN. */
  private listening: Set<string> | null = null;
  private handler: ((notification: Notification) => void) | null = null;

  constructor(
    private readonly listener: ChannelListener,
    private readonly tenantId: string,
    /** Told each notification of the client's channels, as the server sent it. */
    private readonly client: { onNotification(message: Buffer): void },
  ) {}

  /** Resolves once the listener has run what these changes asked of the server. */
  apply(changes: readonly ChannelChange[]): Promise<void> {
    const commands: Array<Promise<void>> = [];
    for (const change of changes) {
      if (change.channel === null) {
        this.clear();
        continue;
      }
      const channel = serverChannel(this.tenantId, change.channel);
      if (change.listen && this.listening?.has(channel) !== true) {
        (this.listening ??= new Set()).add(channel);
        const client = this.client;
        this.handler ??= (notification) => client.onNotification(notification.message);
        commands.push(this.listener.subscribe(channel, this.handler));
      } else if (!change.listen && this.listening?.delete(channel) === true && this.handler !== null) {
        this.listener.unsubscribe(channel, this.handler);
      }
    }
    return Promise.all(commands).then(() => undefined);
  }

  /** UNLISTEN *, or the client is gone. */
  clear(): void {
    const handler = this.handler;
    if (this.listening === null || handler === null) return;
    for (const channel of this.listening) this.listener.unsubscribe(channel, handler);
    this.listening = null;
  }
}
