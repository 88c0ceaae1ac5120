import { createHash } from 'node:crypto';
import { continueSession, finalizeSession, type SaslSession, startSession } from 'pg/lib/crypto/sasl.js';

/**
 * The most PBKDF2 iterations pgfence computes for a backend's SCRAM exchange. Postgres's default
 * (scram_iterations, settable since 16) is 4096, and the count in force is the one stored in the
 * role's verifier when its password was set. OWASP's current advice for PBKDF2-HMAC-SHA256 is
 * 600,000, so 1,000,000 leaves room for an operator who followed it, while a hostile or
 * misconfigured server (or a man in the middle under sslmode prefer/require) can hold one libuv
 * threadpool thread for about half a second per connect (467 ms measured at 1M), not twenty
 * minutes at i=2^31-1. node-postgres's own default cap is 100,000.
 */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

/**
 * Client side of SCRAM-SHA-256 (RFC 5802 / 7677) for the backend handshake, on node-postgres's
 * implementation (pg/lib/crypto/sasl.js). What that gives us:
 * - PBKDF2 and the HMACs go through WebCrypto, whose jobs run on libuv's threadpool: the event loop
 *   keeps serving every other client while a proof is computed.
 * - The password is SASLprep'd before PBKDF2: non-ASCII spaces become U+0020, the characters RFC
 *   3454 maps to nothing are removed, then NFKC. pg skips SASLprep's prohibited-character and bidi
 *   checks; where those fail, Postgres (server and libpq) falls back to the raw password, so the
 *   two agree for every ASCII password and every password SASLprep accepts.
 * - The server nonce must extend ours, the salt be base64, the iteration count a positive integer.
 * - The user name is sent as "*" (Postgres takes the startup message's), and there is no channel
 *   binding: no TLS stream is handed to pg, so the GS2 header is "n", as libpq's
 *   channel_binding=disable.
 */
export class ScramClient {
  private readonly session: SaslSession;
  private readonly clientFirst: string;

  /** Throws when the server offers no SCRAM-SHA-256. */
  constructor(
    mechanisms: readonly string[],
    private readonly password: string,
  ) {
    if (!mechanisms.includes('SCRAM-SHA-256')) throw new Error(`unsupported SASL mechanisms: ${mechanisms.join(', ')}`);
    // null: no TLS stream, so no channel binding (pg would pick SCRAM-SHA-256-PLUS with one).
    this.session = startSession(mechanisms, null, MAX_SCRAM_ITERATIONS);
    this.clientFirst = this.session.response;
  }

  /** The SASL mechanism to name in SASLInitialResponse. */
  get mechanism(): string {
    return this.session.mechanism;
  }

  /** The client-first message. */
  initialResponse(): string {
    return this.clientFirst;
  }

  /**
   * Answers the server-first message with the client-final message. Refuses an iteration count
   * above MAX_SCRAM_ITERATIONS before computing anything.
   */
  async finalResponse(serverFirst: string): Promise<string> {
    const iterations = iterationCount(serverFirst);
    if (iterations !== undefined && iterations > MAX_SCRAM_ITERATIONS) {
      throw new Error(
        `SCRAM: the backend asks for ${iterations} PBKDF2 iterations, above pgfence's limit of ${MAX_SCRAM_ITERATIONS}; ` +
          "set the backend role's password again under a lower scram_iterations",
      );
    }
    // pg checks the same cap (passed to startSession) and everything else in the message.
    await continueSession(this.session, this.password, serverFirst, null);
    return this.session.response;
  }

  /** Checks the server-final message: proves the server knew the password too. */
  verifyServerFinal(serverFinal: string): void {
    finalizeSession(this.session, serverFinal);
  }
}

/** The i= attribute when it is a well-formed count; pg reports a malformed one. */
function iterationCount(serverFirst: string): number | undefined {
  const text = serverFirst
    .split(',')
    .find((attr) => attr.startsWith('i='))
    ?.slice(2);
  return text !== undefined && /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
}

/** The md5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}
