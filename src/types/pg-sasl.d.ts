/**
 * node-postgres's SCRAM-SHA-256 client (pg/lib/crypto/sasl.js, CommonJS, shipped without types).
 * Only what src/backend/scram.ts uses; the shapes are those of pg 8.23.
 */
declare module 'pg/lib/crypto/sasl.js' {
  import type { TLSSocket } from 'node:tls';

  /** Mutable state pg threads through the three calls; `response` is the next message to send. */
  export interface SaslSession {
    mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';
    clientNonce: string;
    response: string;
    message: 'SASLInitialResponse' | 'SASLResponse';
    scramMaxIterations: number;
    serverSignature?: string;
  }

  /**
   * Picks SCRAM-SHA-256 (or -PLUS when a TLS `stream` is given and the server offers it) and makes
   * the client-first message. Throws when the server offers neither.
   */
  export function startSession(
    mechanisms: readonly string[],
    stream?: TLSSocket | false | null,
    scramMaxIterations?: number,
  ): SaslSession;

  /** Checks the server-first message and derives the proof (WebCrypto, off the main thread). */
  export function continueSession(
    session: SaslSession,
    password: string,
    serverData: string,
    stream?: TLSSocket | false | null,
  ): Promise<void>;

  /** Checks the server signature in the server-final message; throws on a mismatch or `e=`. */
  export function finalizeSession(session: SaslSession, serverData: string): void;

  export const DEFAULT_MAX_SCRAM_ITERATIONS: number;
}
