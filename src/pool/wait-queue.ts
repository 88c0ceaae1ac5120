import type { BackendConnection } from '../backend/connection.js';

/** One client waiting for a backend. */
export interface Waiter {
  readonly tenant: string;
  readonly since: number;
  resolve(backend: BackendConnection): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** Links of the queue; null when not queued. */
  prev: Waiter | null;
  next: Waiter | null;
  queued: boolean;
}

/**
 * The clients waiting for a backend, oldest first: append, remove from anywhere (a timeout, a
 * same-tenant waiter served out of turn) and take the head, each in O(1).
 */
export class WaitQueue {
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get first(): Waiter | null {
    return this.head;
  }

  push(waiter: Waiter): void {
    waiter.prev = this.tail;
    waiter.next = null;
    if (this.tail === null) this.head = waiter;
    else this.tail.next = waiter;
    this.tail = waiter;
    waiter.queued = true;
    this.count++;
  }

  /** Takes a waiter out of the queue; false if it was not in it. */
  remove(waiter: Waiter): boolean {
    if (!waiter.queued) return false;
    if (waiter.prev === null) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = null;
    waiter.next = null;
    waiter.queued = false;
    this.count--;
    return true;
  }

  /** Empties the queue, returning every waiter oldest first. */
  drain(): Waiter[] {
    const all: Waiter[] = [];
    for (let w = this.head; w !== null; w = w.next) all.push(w);
    for (const w of all) this.remove(w);
    return all;
  }
}
