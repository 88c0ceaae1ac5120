import { FramingError } from './framer.js';

/** What a scanner does with one message, decided from its type byte alone. */
export const enum Route {
  /** Passed on as received, in ranges of the chunk; streamed when it spans chunks. */
  Forward = 0,
  /** Assembled whole (up to the size limit) and handed to `inspect`. */
  Inspect = 1,
  /** Skipped. */
  Drop = 2,
}

export interface ScanSink {
  route(type: number): Route;
  /** A whole message routed Inspect, header included. */
  inspect(message: Buffer): void;
  /** Bytes of messages routed Forward, in order; a range may hold many messages or part of one. */
  forward(bytes: Buffer): void;
  /** False once the sink wants nothing more from this stream (it is being closed). */
  readonly open: boolean;
}

const HEADER = 5;

/**
 * Walks the server's byte stream header by header. Messages the sink does not inspect (DataRow,
 * CopyData, RowDescription, ...) cost one header read each: consecutive ones leave as one range
 * of the received chunk, and one larger than a chunk is streamed piece by piece, never buffered.
 * Only inspected messages are assembled, and only they are bound by the size limit.
 */
export class MessageScanner {
  private readonly header = Buffer.alloc(HEADER);
  private headerFilled = 0;
  /** Bytes of the current message still to come, and what to do with them. */
  private remaining = 0;
  private route: Route = Route.Forward;
  private pieces: Buffer[] = [];
  private piecesLength = 0;

  constructor(private readonly maxInspectedBytes: number) {}

  push(chunk: Buffer, sink: ScanSink): void {
    let offset = 0;
    const size = chunk.length;
    if (this.remaining > 0) offset = this.continueMessage(chunk, sink);
    else if (this.headerFilled > 0) offset = this.continueHeader(chunk, sink);
    let runStart = offset;
    while (offset < size && sink.open) {
      if (size - offset < HEADER) {
        if (offset > runStart) sink.forward(chunk.subarray(runStart, offset));
        chunk.copy(this.header, 0, offset, size);
        this.headerFilled = size - offset;
        return;
      }
      const type = chunk[offset] as number;
      const total = 1 + checkedLength(chunk.readInt32BE(offset + 1), type);
      const route = sink.route(type);
      if (route === Route.Forward) {
        if (size - offset >= total) {
          offset += total;
          continue;
        }
        sink.forward(chunk.subarray(runStart, size));
        this.start(route, total - (size - offset));
        return;
      }
      if (offset > runStart) sink.forward(chunk.subarray(runStart, offset));
      if (size - offset >= total) {
        if (route === Route.Inspect) sink.inspect(this.checkedInspect(chunk.subarray(offset, offset + total)));
        offset += total;
        runStart = offset;
        continue;
      }
      this.start(route, total - (size - offset));
      if (route === Route.Inspect) this.collect(chunk.subarray(offset), total);
      return;
    }
    if (offset > runStart && sink.open) sink.forward(chunk.subarray(runStart, offset));
  }

  private start(route: Route, remaining: number): void {
    this.route = route;
    this.remaining = remaining;
  }

  private collect(piece: Buffer, total: number): void {
    if (total > this.maxInspectedBytes) throw new FramingError(`server message of ${total} bytes exceeds the limit of ${this.maxInspectedBytes}`);
    this.pieces.push(piece);
    this.piecesLength += piece.length;
  }

  /** The rest of a message begun in an earlier chunk; returns the offset after it. */
  private continueMessage(chunk: Buffer, sink: ScanSink): number {
    const take = Math.min(this.remaining, chunk.length);
    const piece = chunk.subarray(0, take);
    this.remaining -= take;
    if (this.route === Route.Forward) sink.forward(piece);
    else if (this.route === Route.Inspect) {
      this.pieces.push(piece);
      this.piecesLength += take;
      if (this.remaining === 0) {
        const whole = Buffer.concat(this.pieces, this.piecesLength);
        this.pieces = [];
        this.piecesLength = 0;
        sink.inspect(whole);
      }
    }
    return take;
  }

  /** A header begun in an earlier chunk: completes it, then handles its message like any other. */
  private continueHeader(chunk: Buffer, sink: ScanSink): number {
    const take = Math.min(HEADER - this.headerFilled, chunk.length);
    chunk.copy(this.header, this.headerFilled, 0, take);
    this.headerFilled += take;
    if (this.headerFilled < HEADER) return take;
    this.headerFilled = 0;
    const type = this.header[0] as number;
    const total = 1 + checkedLength(this.header.readInt32BE(1), type);
    const route = sink.route(type);
    const head = Buffer.from(this.header);
    if (route === Route.Forward) sink.forward(head);
    this.start(route, total - HEADER);
    if (route === Route.Inspect) this.collect(head, total);
    if (this.remaining === 0) {
      if (route === Route.Inspect) this.continueMessage(chunk.subarray(0, 0), sink);
      return take;
    }
    return take + this.continueMessage(chunk.subarray(take), sink);
  }

  private checkedInspect(message: Buffer): Buffer {
    if (message.length > this.maxInspectedBytes) throw new FramingError(`server message of ${message.length} bytes exceeds the limit of ${this.maxInspectedBytes}`);
    return message;
  }
}

function checkedLength(length: number, type: number): number {
  if (length < 4) throw new FramingError(`invalid message length ${length} for message type ${JSON.stringify(String.fromCharCode(type))}`);
  return length;
}
