import type pg from 'pg';
import { parseExposition, type Exposition } from '../admin/exposition.js';

export { type LogRecord, ServeProcess } from '../support/serve-process.js';

/** The worker that issued a client's BackendKeyData: bits 24-30 of its process id. */
export function workerOf(client: pg.Client): number {
  return ((client as unknown as { processID: number }).processID >>> 24) & 0x7f;
}

export function keyOf(client: pg.Client): { processId: number; secretKey: number } {
  const key = client as unknown as { processID: number; secretKey: number };
  return { processId: key.processID, secretKey: key.secretKey };
}

export async function scrape(adminPort: number): Promise<Exposition> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parseExposition(await response.text());
}
