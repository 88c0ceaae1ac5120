import type { Logger } from 'pino';
import { type ConsoleContext, runConsoleCommand } from '../admin/console.js';
import * as build from '../protocol/build.js';
import { Frontend as F } from '../protocol/codes.js';
import { queryText } from '../protocol/decode.js';
import type { FramedMessage } from '../protocol/framer.js';
import { clientErrors } from './errors.js';

/**
 * A client connected to the virtual database `pgfence` with an admin token: every simple Query
 * is one console command, answered in order; nothing reaches a backend.
 */
export class ConsoleConnection {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: ConsoleContext,
    private readonly write: (parts: readonly Buffer[]) => void,
    private readonly end: (fields?: build.ErrorFields) => void,
    private readonly log: Logger,
  ) {}

  /** The startup answer: the parameters psql expects from any server. */
  static greeting(keyData: Buffer): Buffer[] {
    const params: Array<[string, string]> = [
      ['server_version', '18.0 (pgfence admin console)'],
      ['server_encoding', 'UTF8'],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO, MDY'],
      ['integer_datetimes', 'on'],
      ['standard_conforming_strings', 'on'],
      ['application_name', 'pgfence'],
    ];
    return [build.AUTHENTICATION_OK, ...params.map(([k, v]) => build.parameterStatus(k, v)), keyData, build.readyForQuery('I')];
  }

  onMessages(messages: readonly FramedMessage[]): void {
    for (const msg of messages) {
      switch (msg.type) {
        case F.Query: {
          const sql = queryText(msg.bytes).text;
          this.chain = this.chain
            .then(async () => {
              const reply = await runConsoleCommand(sql, this.ctx);
              this.write([...reply, build.readyForQuery('I')]);
            })
            .catch((error: unknown) => {
              this.log.error({ err: error }, 'admin console failed');
              this.end(clientErrors.internal());
            });
          break;
        }
        case F.Terminate:
          void this.chain.then(() => this.end());
          return;
        default:
          this.end(clientErrors.consoleSimpleQueryOnly());
          return;
      }
    }
  }
}
