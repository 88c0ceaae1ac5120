import { readFileSync } from 'node:fs';
import tls from 'node:tls';

export interface ClientTlsSettings {
  /** PEM text, or the path of a PEM file. */
  cert: string;
  key: string;
}

/** PEM given inline, or read from a file path. */
function pem(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}

/** The server-side TLS context for client connections; fails at start if the files are unusable. */
export function clientTlsContext(settings: ClientTlsSettings): tls.SecureContext {
  return tls.createSecureContext({ cert: pem(settings.cert), key: pem(settings.key), minVersion: 'TLSv1.2' });
}
