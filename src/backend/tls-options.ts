import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { BackendTarget } from './connection.js';

/**
 * TLS options for a connection to the backend under libpq's sslmode rules: require encrypts
 * without checking the certificate, verify-ca checks the chain, verify-full also the host name.
 * Null for disable.
 */
export function backendTlsOptions(target: Pick<BackendTarget, 'host' | 'sslmode' | 'sslRootCert'>): tls.ConnectionOptions | null {
  if (target.sslmode === 'disable') return null;
  const verify = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full';
  const root = target.sslRootCert;
  return {
    servername: net.isIP(target.host) === 0 ? target.host : undefined,
    ca: root === undefined ? undefined : root.includes('-----BEGIN') ? root : readFileSync(root, 'utf8'),
    rejectUnauthorized: verify,
    checkServerIdentity: target.sslmode === 'verify-full' ? tls.checkServerIdentity : () => undefined,
  };
}
