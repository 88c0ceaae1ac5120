import type { Writable } from 'node:stream';

/** Up to this many bytes, the parts of a batch are copied into one buffer: one write() instead of a writev. */
const JOIN_UP_TO_BYTES = 16 * 1024;

/**
 * Writes the messages of one batch as one system call: a single part as it is, small batches
 * joined into one buffer (copying a few kB costs less than a writev of many small iovecs), large
 * ones (result sets) corked into one writev without a copy. Returns the bytes written.
 */
export function writeBatch(socket: Writable, parts: readonly Buffer[]): number {
  if (parts.length === 1) {
    const only = parts[0] as Buffer;
    socket.write(only);
    return only.length;
  }
  let bytes = 0;
  for (const part of parts) bytes += part.length;
  if (bytes <= JOIN_UP_TO_BYTES) {
    socket.write(Buffer.concat(parts as Buffer[], bytes));
    return bytes;
  }
  socket.cork();
  try {
    for (const part of parts) socket.write(part);
  } finally {
    socket.uncork();
  }
  return bytes;
}
