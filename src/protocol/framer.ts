/**
 * Splits a byte stream into typed protocol messages (type byte + int32 length), the way the client
 * side of the protocol after startup is framed. A message that arrives whole inside one chunk is
 * handed out as a zero-copy subarray of that chunk. A message split across chunks is collected as
 * the pieces arrive and joined once, when it is complete: the declared length is checked against
 * the limit in force but never allocated up front, so a peer cannot make pgfence reserve memory
 * it has not sent.
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
/** `pieces` between split messages: shared, never pushed to (a split message gets its own array). */
const NO_PIECES: Buffer[] = [];

export class MessageFramer {
  /** A header split across chunks; allocated the first time one is (an idle client holds none). */
  private header: Buffer | null = null;
  private headerFilled = 0;
  /** Pieces of the message being received, header included, and their total length. */
  private pieces: Buffer[] = NO_PIECES;
  private piecesLength = 0;
  private wanted = 0;

  constructor(private maxMessageBytes: number) {}

  /** The largest length field accepted from now on (lower before authentication). */
  limit(maxMessageBytes: number): void {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** True while a message is half received. */
  get midMessage(): boolean {
    return this.headerFilled > 0 || this.wanted > 0;
  }

  /** Frames every complete message in `chunk`, in order; keeps the rest for the next call. */
  push(chunk: Buffer, out: FramedMessage[]): void {
    let offset = this.midMessage ? this.continuePartial(chunk, out) : 0;
    const size = chunk.length;
    while (offset < size) {
      if (size - offset < HEADER) {
        chunk.copy((this.header ??= Buffer.alloc(HEADER)), 0, offset, size);
        this.headerFilled = size - offset;
        return;
      }
      const type = chunk[offset] as number;
      const total = 1 + this.checkedLength(chunk.readInt32BE(offset + 1), type);
      if (size - offset >= total) {
        out.push({ type, bytes: chunk.subarray(offset, offset + total) });
        offset += total;
      } else {
        this.wanted = total;
        this.pieces = [chunk.subarray(offset)];
        this.piecesLength = size - offset;
        return;
      }
    }
  }

  private continuePartial(chunk: Buffer, out: FramedMessage[]): number {
    let offset = 0;
    if (this.wanted === 0) {
      const header = this.header as Buffer;
      const take = Math.min(HEADER - this.headerFilled, chunk.length);
      chunk.copy(header, this.headerFilled, 0, take);
      this.headerFilled += take;
      offset = take;
      if (this.headerFilled < HEADER) return offset;
      this.headerFilled = 0;
      this.wanted = 1 + this.checkedLength(header.readInt32BE(1), header[0] as number);
      this.pieces = [Buffer.from(header)];
      this.piecesLength = HEADER;
    }
    const take = Math.min(this.wanted - this.piecesLength, chunk.length - offset);
    this.pieces.push(chunk.subarray(offset, offset + take));
    this.piecesLength += take;
    offset += take;
    if (this.piecesLength === this.wanted) {
      const bytes = Buffer.concat(this.pieces, this.wanted);
      this.pieces = NO_PIECES;
      this.piecesLength = 0;
      this.wanted = 0;
      out.push({ type: bytes[0] as number, bytes });
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
