/**
 * Splits a byte stream into typed protocol messages (type byte + int32 length), the way both
 * directions of the protocol after startup are framed. A message that arrives whole inside one
 * chunk is handed out as a zero-copy subarray of that chunk; only a message split across chunks
 * is assembled into one buffer allocated at its final size (never repeated concatenation).
 */
export interface FramedMessage {
  /** Type byte. */
  readonly type: number;
  /** The whole message, header included: forward it as is. */
  readonly bytes: Buffer;
}

export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

const HEADER = 5;

export class MessageFramer {
  private readonly header = Buffer.alloc(HEADER);
  private headerFilled = 0;
  private partial: Buffer | null = null;
  private partialFilled = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** True while a message is half received. */
  get midMessage(): boolean {
    return this.headerFilled > 0 || this.partial !== null;
  }

  /** Frames every complete message in `chunk`, in order; keeps the rest for the next call. */
  push(chunk: Buffer, out: FramedMessage[]): void {
    let offset = 0;
    const size = chunk.length;
    if (this.partial !== null || this.headerFilled > 0) offset = this.continuePartial(chunk, out);
    while (offset < size) {
      if (size - offset < HEADER) {
        chunk.copy(this.header, 0, offset, size);
        this.headerFilled = size - offset;
        return;
      }
      const type = chunk[offset] as number;
      const total = 1 + this.checkedLength(chunk.readInt32BE(offset + 1), type);
      if (size - offset >= total) {
        out.push({ type, bytes: chunk.subarray(offset, offset + total) });
        offset += total;
      } else {
        this.partial = Buffer.allocUnsafe(total);
        this.partialFilled = chunk.copy(this.partial, 0, offset, size);
        return;
      }
    }
  }

  private continuePartial(chunk: Buffer, out: FramedMessage[]): number {
    let offset = 0;
    if (this.partial === null) {
      const need = HEADER - this.headerFilled;
      const take = Math.min(need, chunk.length);
      chunk.copy(this.header, this.headerFilled, 0, take);
      this.headerFilled += take;
      offset = take;
      if (this.headerFilled < HEADER) return offset;
      const type = this.header[0] as number;
      const total = 1 + this.checkedLength(this.header.readInt32BE(1), type);
      this.headerFilled = 0;
      this.partial = Buffer.allocUnsafe(total);
      this.partialFilled = this.header.copy(this.partial, 0, 0, HEADER);
    }
    const partial = this.partial;
    const take = Math.min(partial.length - this.partialFilled, chunk.length - offset);
    chunk.copy(partial, this.partialFilled, offset, offset + take);
    this.partialFilled += take;
    offset += take;
    if (this.partialFilled === partial.length) {
      this.partial = null;
      this.partialFilled = 0;
      out.push({ type: partial[0] as number, bytes: partial });
    }
    return offset;
  }

  private checkedLength(length: number, type: number): number {
    if (length < 4 || length > this.maxMessageBytes) {
      throw new FramingError(
        `invalid message length ${length} for message type ${JSON.stringify(String.fromCharCode(type))}`,
      );
    }
    return length;
  }
}
