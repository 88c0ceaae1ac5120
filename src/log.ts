import pino, { type Logger } from 'pino';

/** Keys that may hold a secret wherever they appear in a log object. */
const REDACT = ['password', 'token', 'jwt', 'secret', 'privateKey', '*.password', '*.token', '*.jwt', '*.secret', '*.privateKey'];

export function createLogger(level: string, pretty = false, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'pgfence' }, redact: { paths: REDACT, censor: '[redacted]' } };
  if (destination !== undefined) return pino(options, destination);
  if (!pretty) return pino(options);
  return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,service' } } });
}
