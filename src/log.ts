import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

/** Keys that may hold a secret wherever they appear in a log object. */
const REDACT = ['password', 'token', 'jwt', 'secret', 'privateKey', '*.password', '*.token', '*.jwt', '*.secret', '*.privateKey'];

/**
 * pino JSON lines. Errors go under the `err` key as the Error itself, so pino's error serializer
 * writes its type, message and stack. `pretty` (the demo) uses pino-pretty, an optional dependency:
 * a production install without it logs JSON lines instead, and says so once on stderr.
 */
export function createLogger(level: string, pretty = false, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'pgfence' }, redact: { paths: REDACT, censor: '[redacted]' } };
  if (destination !== undefined) return pino(options, destination);
  if (!pretty) return pino(options);
  if (!installed('pino-pretty')) {
    process.stderr.write('pgfence: the optional package pino-pretty is not installed; logging JSON lines (npm install pino-pretty for readable logs)\n');
    return pino(options);
  }
  return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,service' } } });
}

/** Whether a package can be loaded from here (pino resolves a transport target the same way, in a worker). */
function installed(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}
