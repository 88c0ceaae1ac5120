import pg from 'pg';
import type { Protocol } from './corpus.js';

export interface RunOptions {
  protocol: Protocol;
  /** Bind values (extended protocol). */
  params?: readonly string[];
  /** Sent when the server asks for COPY FROM STDIN data; without it the COPY is failed. */
  copyIn?: string;
}

export interface RunResult {
  /** One result per statement of the text, rows as arrays. */
  results: pg.QueryResult[];
  /** What COPY ... TO STDOUT sent, concatenated. */
  copyOut: string;
}

/** node-postgres's private hooks for COPY data, which a plain query ignores or fails. */
interface CopyHooks {
  handleCopyData(msg: { chunk: Buffer }): void;
  handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void; sendCopyFail(m: string): void }): void;
}

/**
 * Runs one text and keeps everything the server answered. The extended protocol is forced with
 * queryMode 'extended': node-postgres sends `{ text, values: [] }` as a simple Query, because it
 * only prepares a statement that has values.
 */
export function runText(client: pg.Client, text: string, opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const copied: Buffer[] = [];
    // Rows as arrays: as objects, two columns of the same name would hide one another.
    const config: pg.QueryArrayConfig & { queryMode?: 'extended' } =
      opts.protocol === 'extended'
        ? { text, values: [...(opts.params ?? [])], queryMode: 'extended', rowMode: 'array' }
        : { text, rowMode: 'array' };
    const query = new pg.Query(config, undefined, (error, result) => {
      if (error !== undefined && error !== null) {
        reject(error);
        return;
      }
      const results = (Array.isArray(result) ? result : [result]) as pg.QueryResult[];
      resolve({ results, copyOut: Buffer.concat(copied).toString('utf8') });
    });
    const hooks: CopyHooks = {
      handleCopyData: (msg) => copied.push(msg.chunk),
      handleCopyInResponse: (connection) => {
        if (opts.copyIn === undefined) {
          connection.sendCopyFail('the test gave no COPY data');
          return;
        }
        connection.sendCopyFromChunk(Buffer.from(opts.copyIn, 'utf8'));
        connection.endCopyFrom();
      },
    };
    Object.assign(query, hooks);
    client.query(query);
  });
}

/** The error a text fails with, or null when it succeeds. */
export async function errorOf(run: Promise<unknown>): Promise<pg.DatabaseError | null> {
  try {
    await run;
    return null;
  } catch (error) {
    return error as pg.DatabaseError;
  }
}
