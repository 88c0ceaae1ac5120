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
  /** The server channels listened on; null until the first LISTEN (most clients never send one). */
  private listening: Set<string> | null = null;
  private listenerHandle: ((notification: Notification) => void) | null = null;
  private held: HeldListener | null = null;

  constructor(
    private readonly client: {
      /** The listener where the tenant's data lives now (src/placement/listeners.ts). */
      holdListener(): HeldListener;
      /** Told each notification of the client's channels, as the server sent it. */
      onNotification(message: Buffer): void;
    },
    private readonly tenantId: string,
  ) {}

  /** What the listener calls for this client, made on the first LISTEN. */
  private get handler(): (notification: Notification) => void {
    const client = this.client;
    this.listenerHandle ??= (notification) => client.onNotification(notification.message);
    return this.listenerHandle;
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
      if (change.listen && this.listening?.has(channel) !== true) {
        this.held ??= this.client.holdListener();
        (this.listening ??= new Set()).add(channel);
        commands.push(this.held.listener.subscribe(channel, this.handler));
      } else if (!change.listen && this.listening?.delete(channel) === true) {
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
    const held = this.client.holdListener();
    this.held = held;
    const commands = [...(this.listening ?? [])].map((channel) => {
      old.listener.unsubscribe(channel, this.handler);
      return held.listener.subscribe(channel, this.handler);
    });
    old.letGo();
    return Promise.all(commands).then(() => undefined);
  }

  /** UNLISTEN *, or the client is gone. */
  clear(): void {
    if (this.listening !== null) for (const channel of this.listening) this.held?.listener.unsubscribe(channel, this.handler);
    this.listening = null;
    this.letGo();
  }

  private letGo(): void {
    this.held?.letGo();
    this.held = null;
  }
}
