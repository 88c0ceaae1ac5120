import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { BackendTarget } from './connection.js';
import { BackendError } from './errors.js';
import { md5PasswordResponse, ScramClient } from './scram.js';
import { backendTlsOptions } from './tls-options.js';

/** A server session after startup and authentication, ready for queries. */
export interface ServerSession {
  socket: net.Socket;
  params: Map<string, string>;
  processId: number;
  secretKey: number;
}

/**
 * Connects to the server, negotiates TLS as `sslmode` says, and runs the startup exchange
 * (trust, cleartext, md5, SCRAM-SHA-256) until the first ReadyForQuery.
 */
export function openServerSession(target: BackendTarget, connectTimeoutMs: number): Promise<ServerSession> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: target.host, port: target.port });
    raw.setNoDelay(true);
    raw.setKeepAlive(true, 30_000);
    let socket: net.Socket = raw;
    const timer = setTimeout(() => fail(new Error(`backend handshake timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(error);
    };
    raw.once('error', fail);
    raw.once('close', () => fail(new Error('backend closed the connection during the handshake')));
    const startup = (final: net.Socket): void => {
      socket = final;
      const session: ServerSession = { socket: final, params: new Map(), processId: 0, secretKey: 0 };
      const handshake = new Handshake(session, final, target, () => {
        clearTimeout(timer);
        for (const s of new Set([raw, final])) {
          s.removeAllListeners('error');
          s.removeAllListeners('close');
          s.removeAllListeners('data');
        }
        resolve(session);
      }, fail);
      final.on('data', (chunk: Buffer) => handshake.onData(chunk));
      final.write(serialize.startup({ user: target.user, database: target.database, application_name: 'pgfence', client_encoding: 'UTF8' }));
    };
    raw.once('connect', () => {
      if (target.sslmode === 'disable') startup(raw);
      else negotiateTls(raw, target, startup, fail);
    });
  });
}

/** SSLRequest, then TLS on the same socket when the server answers 'S' (libpq's sslmode rules). */
function negotiateTls(
  raw: net.Socket,
  target: BackendTarget,
  proceed: (socket: net.Socket) => void,
  fail: (error: Error) => void,
): void {
  raw.write(serialize.requestSsl());
  raw.once('data', (answer: Buffer) => {
    if (answer[0] === 0x4e /* N */) {
      if (target.sslmode === 'prefer') proceed(raw);
      else fail(new Error(`the backend does not offer TLS (backend.sslmode is ${target.sslmode})`));
      return;
    }
    if (answer[0] !== 0x53 /* S */ || answer.length > 1) {
      fail(new Error('unexpected answer to SSLRequest from the backend'));
      return;
    }
    let secure: tls.TLSSocket;
    try {
      secure = tls.connect({ ...backendTlsOptions(target), socket: raw });
    } catch (error) {
      fail(error as Error);
      return;
    }
    secure.setNoDelay(true);
    secure.once('error', fail);
    secure.once('secureConnect', () => proceed(secure));
  });
}

/** The startup exchange with the server, decoded with pg-protocol's parser. */
class Handshake {
  private readonly parser = new Parser();
  private scram: ScramClient | null = null;
  /** Messages that arrived while a SCRAM proof was being computed: handled, in order, once it is sent. */
  private held: BackendMessage[] | null = null;

  constructor(
    private readonly session: ServerSession,
    private readonly socket: net.Socket,
    private readonly target: BackendTarget,
    private readonly done: () => void,
    private readonly fail: (error: Error) => void,
  ) {}

  onData(chunk: Buffer): void {
    try {
      this.parser.parse(chunk, (msg) => this.receive(msg));
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private receive(msg: BackendMessage): void {
    if (this.held !== null) this.held.push(msg);
    else this.onMessage(msg);
  }

  /** Computes the proof off the event loop, holding later messages until it is sent. */
  private continueScram(scram: ScramClient, serverFirst: string): void {
    this.held = [];
    scram.finalResponse(serverFirst).then(
      (response) => {
        if (this.socket.destroyed) return; // failed or timed out meanwhile
        this.socket.write(serialize.sendSCRAMClientFinalMessage(response));
        const held = this.held ?? [];
        this.held = null;
        try {
          for (const msg of held) this.receive(msg);
        } catch (error) {
          this.fail(error as Error);
        }
      },
      (error: unknown) => this.fail(error as Error),
    );
  }

  private password(): string {
    if (this.target.password === undefined) throw new Error('the backend asks for a password and none is configured');
    return this.target.password;
  }

  private onMessage(msg: BackendMessage): void {
    const m = msg as BackendMessage & Record<string, unknown>;
    switch (msg.name) {
      case 'authenticationOk':
        return;
      case 'authenticationCleartextPassword':
        this.socket.write(serialize.password(this.password()));
        return;
      case 'authenticationMD5Password':
        this.socket.write(serialize.password(md5PasswordResponse(this.target.user, this.password(), m['salt'] as Buffer)));
        return;
      case 'authenticationSASL':
        this.scram = new ScramClient(m['mechanisms'] as string[], this.password());
        this.socket.write(serialize.sendSASLInitialResponseMessage(this.scram.mechanism, this.scram.initialResponse()));
        return;
      case 'authenticationSASLContinue':
        if (this.scram === null) throw new Error('unexpected SASL continue');
        this.continueScram(this.scram, m['data'] as string);
        return;
      case 'authenticationSASLFinal':
        if (this.scram === null) throw new Error('unexpected SASL final');
        this.scram.verifyServerFinal(m['data'] as string);
        return;
      case 'parameterStatus':
        this.session.params.set(m['parameterName'] as string, m['parameterValue'] as string);
        return;
      case 'backendKeyData':
        this.session.processId = m['processID'] as number;
        this.session.secretKey = m['secretKey'] as number;
        return;
      case 'readyForQuery':
        this.done();
        return;
      case 'error': {
        const err = msg as unknown as { message: string; code?: string };
        this.fail(new BackendError(err.message, err.code));
        return;
      }
      case 'notice':
        return;
      default:
        throw new Error(`unexpected message during backend handshake: ${msg.name}`);
    }
  }
}

