import { describe, expect, it } from 'vitest';
import { QueryTimer } from '../../src/admin/index.js';
import { PreparedStatements } from '../../src/backend/prepared-statements.js';
import * as build from '../../src/protocol/build.js';
import { MessageScanner, type ScanSink } from '../../src/protocol/scanner.js';
import { ReplyTracker, Sent, type StandIn } from '../../src/relay/reply-tracker.js';
import { type ServerBinding, ServerToClient } from '../../src/relay/server-to-client.js';
import {
  bindComplete,
  closeComplete,
  commandComplete,
  dataRow,
  errorMessage,
  noData,
  notificationMessage,
  parameterDescription,
  parameterStatusMessage,
  parseComplete,
  readyForQueryMessage,
  rowDescription,
} from '../support/backend-messages.js';

const BACKEND_PID = 777;
const CLIENT_PID = 4242;

const refused: StandIn = {
  marker: 'pgfence_rejected_7_1',
  error: { severity: 'ERROR', sqlstate: '42501', message: 'pgfence: statement refused' },
};

const missingPortal = (portal: string): Buffer =>
  errorMessage({ S: 'ERROR', V: 'ERROR', C: '34000', M: `portal "${portal}" does not exist` });

function setup() {
  const tracker = new ReplyTracker();
  const timer = new QueryTimer(() => undefined);
  const statements = new PreparedStatements(10);
  const binding: ServerBinding = { searchPath: '"acme"', superuser: 'off', user: 'pool', allowsSearchPath: () => false, params: new Map(), backendPid: BACKEND_PID, statements };
  const toClient = new ServerToClient(tracker, 'acme', { clientPid: CLIENT_PID }, timer, true);
  toClient.startBinding(binding);
  const scanner = new MessageScanner(1 << 20);
  const sink: ScanSink = {
    route: (type) => toClient.route(type),
    inspect: (message) => toClient.inspect(message),
    forward: (bytes) => toClient.forward(bytes),
    open: true,
  };
  /** Relays server chunks; returns what the client gets. */
  const receive = (...chunks: Buffer[]): Buffer => {
    for (const chunk of chunks) scanner.push(chunk, sink);
    return Buffer.concat(toClient.take());
  };
  return { tracker, timer, statements, binding, toClient, receive };
}

describe('ServerToClient', () => {
  it('swaps the stand-in\'s error for the refusal when the 34000 error names the marker', () => {
    const s = setup();
    s.timer.sent();
    s.tracker.expect(Sent.Execute, false, refused);
    s.tracker.expect(Sent.Sync);
    const got = s.receive(Buffer.concat([missingPortal(refused.marker), readyForQueryMessage('I')]));
    expect(got).toEqual(Buffer.concat([build.errorResponse(refused.error), readyForQueryMessage('I')]));
    expect(s.toClient.failed).toBe(true);
    expect(s.tracker.idle).toBe(true);
    expect(s.timer.pending).toBe(0);
  });

  it('passes the server\'s own error at a stand-in as is: another code, or another portal', () => {
    const errors = [
      missingPortal('pgfence_rejected_7_2'),
      missingPortal('other'),
      errorMessage({ S: 'ERROR', C: '25P02', M: 'current transaction is aborted, commands ignored until end of transaction block' }),
      errorMessage({ S: 'ERROR', C: '57014', M: `canceling statement due to user request (${refused.marker})` }),
    ];
    for (const error of errors) {
      const s = setup();
      s.tracker.expect(Sent.Execute, false, refused);
      s.tracker.expect(Sent.Sync);
      expect(s.receive(Buffer.concat([error, readyForQueryMessage('E')]))).toEqual(Buffer.concat([error, readyForQueryMessage('E')]));
    }
  });

  it('does not swap an error that answers an earlier message than the stand-in', () => {
    const s = setup();
    s.tracker.expect(Sent.Bind);
    s.tracker.expect(Sent.Execute, false, refused);
    s.tracker.expect(Sent.Sync);
    // Even one that names the marker (it cannot be the stand-in's: the server skips that now).
    const error = missingPortal(refused.marker);
    expect(s.receive(error)).toEqual(error);
  });

  it('sets failed at an error, and startBinding clears it', () => {
    const s = setup();
    s.tracker.expect(Sent.Query);
    expect(s.toClient.failed).toBe(false);
    s.receive(errorMessage({ S: 'ERROR', C: '42P01', M: 'relation "x" does not exist' }), readyForQueryMessage('I'));
    expect(s.toClient.failed).toBe(true);
    s.toClient.startBinding(s.binding);
    expect(s.toClient.failed).toBe(false);
  });

  it('forgets on the binding\'s statements exactly those whose Parse the error failed or skipped', () => {
    const s = setup();
    for (const name of ['pgfence_a', 'pgfence_b', 'pgfence_c', 'pgfence_d']) s.statements.add(name);
    s.tracker.expect(Sent.Close, true);
    s.tracker.expect(Sent.Parse, true, 'pgfence_b');
    s.tracker.expect(Sent.Parse, false, 'pgfence_c');
    s.tracker.expect(Sent.Bind);
    s.tracker.expect(Sent.Execute);
    s.tracker.expect(Sent.Sync);
    const error = errorMessage({ S: 'ERROR', C: '42601', M: 'syntax error at or near "SELEC"' });
    expect(s.receive(closeComplete(), error, readyForQueryMessage('I'))).toEqual(Buffer.concat([error, readyForQueryMessage('I')]));
    expect(['pgfence_a', 'pgfence_b', 'pgfence_c', 'pgfence_d'].map((n) => s.statements.use(n))).toEqual([true, false, false, true]);
  });

  it('trips on a reported search_path other than the pin, holding the report back', () => {
    const s = setup();
    s.tracker.expect(Sent.Query);
    const got = s.receive(Buffer.concat([commandComplete('SET'), parameterStatusMessage('search_path', '"globex"')]));
    expect(s.toClient.breach).toBe('search_path');
    expect(got).toEqual(commandComplete('SET'));
  });

  it('trips on a session_authorization other than the pool\'s user', () => {
    const s = setup();
    s.receive(parameterStatusMessage('session_authorization', 'pool'));
    expect(s.toClient.breach).toBeNull();
    expect(s.receive(parameterStatusMessage('session_authorization', 'postgres'))).toEqual(Buffer.alloc(0));
    expect(s.toClient.breach).toBe('session_authorization');
  });

  it('trips on is_superuser leaving the value the pin set, and holds the value pinned() gives', () => {
    const s = setup();
    expect(s.receive(parameterStatusMessage('is_superuser', 'off'))).toEqual(parameterStatusMessage('is_superuser', 'off'));
    expect(s.toClient.breach).toBeNull();
    s.receive(parameterStatusMessage('is_superuser', 'on'));
    expect(s.toClient.breach).toBe('role');

    const pinnedOn = setup();
    pinnedOn.toClient.pinned('on');
    pinnedOn.receive(parameterStatusMessage('is_superuser', 'on'));
    expect(pinnedOn.toClient.breach).toBeNull();
    pinnedOn.receive(parameterStatusMessage('is_superuser', 'off'));
    expect(pinnedOn.toClient.breach).toBe('role');

    // Not known after the pin: not checked.
    const unknown = setup();
    unknown.toClient.pinned(undefined);
    unknown.receive(parameterStatusMessage('is_superuser', 'on'));
    expect(unknown.toClient.breach).toBeNull();
  });

  it('forwards any other ParameterStatus (the pinned search_path too) and notes the change', () => {
    const s = setup();
    expect(s.toClient.changedParameters).toBe(false);
    const reports = [
      parameterStatusMessage('application_name', 'psql'),
      parameterStatusMessage('search_path', '"acme"'),
      parameterStatusMessage('TimeZone', 'UTC'),
    ];
    expect(s.receive(Buffer.concat(reports))).toEqual(Buffer.concat(reports));
    expect(s.toClient.breach).toBeNull();
    expect(s.toClient.changedParameters).toBe(true);
    s.toClient.startBinding(s.binding);
    expect(s.toClient.changedParameters).toBe(false);
  });

  it('rewrites the tenant\'s notifications for the client and drops the others', () => {
    const s = setup();
    const got = s.receive(
      Buffer.concat([
        notificationMessage(BACKEND_PID, 'acme.jobs', 'mine'),
        notificationMessage(999, 'acme.jobs', 'from another session'),
        notificationMessage(BACKEND_PID, 'globex.jobs', 'another tenant'),
        notificationMessage(999, 'acmeco.jobs', 'a tenant whose id starts alike'),
        notificationMessage(999, 'acme', 'no channel'),
        notificationMessage(999, 'acme.globex.jobs', 'a dotted channel of acme'),
      ]),
    );
    expect(got).toEqual(
      Buffer.concat([
        notificationMessage(CLIENT_PID, 'jobs', 'mine'),
        notificationMessage(999, 'jobs', 'from another session'),
        notificationMessage(999, 'globex.jobs', 'a dotted channel of acme'),
      ]),
    );
  });

  it('drops the replies to pgfence\'s own messages, passes the rest, however the stream is split', () => {
    const serverStream = Buffer.concat([
      closeComplete(),
      closeComplete(),
      parseComplete(),
      bindComplete(),
      parameterDescription([23]),
      rowDescription(['n']),
      dataRow(['1']),
      dataRow(['2']),
      commandComplete('SELECT 2'),
      readyForQueryMessage('T'),
      parseComplete(),
      parameterDescription([]),
      noData(),
      readyForQueryMessage('T'),
      parameterStatusMessage('application_name', 'app'),
      rowDescription(['x']),
      dataRow(['a']),
      commandComplete('SELECT 1'),
      errorMessage({ S: 'NOTICE', C: '00000', M: 'notice' }, 'N'),
      notificationMessage(BACKEND_PID, 'acme.jobs', 'hi'),
      readyForQueryMessage('I'),
    ]);
    const expected = Buffer.concat([
      bindComplete(),
      parameterDescription([23]),
      rowDescription(['n']),
      dataRow(['1']),
      dataRow(['2']),
      commandComplete('SELECT 2'),
      readyForQueryMessage('T'),
      readyForQueryMessage('T'),
      parameterStatusMessage('application_name', 'app'),
      rowDescription(['x']),
      dataRow(['a']),
      commandComplete('SELECT 1'),
      errorMessage({ S: 'NOTICE', C: '00000', M: 'notice' }, 'N'),
      notificationMessage(CLIENT_PID, 'jobs', 'hi'),
      readyForQueryMessage('I'),
    ]);
    const failures: number[] = [];
    for (let cut = 0; cut <= serverStream.length; cut++) {
      const s = setup();
      // A client Bind to a statement this backend lacked (Close + Parse injected), Describe, Execute, Sync;
      // then a quiet Describe of a statement prepared on the side; then a simple Query.
      s.tracker.expect(Sent.Close, true);
      s.tracker.expect(Sent.Close, true);
      s.tracker.expect(Sent.Parse, true, 'pgfence_s');
      s.tracker.expect(Sent.Bind);
      s.tracker.expect(Sent.Describe);
      s.tracker.expect(Sent.Execute);
      s.tracker.expect(Sent.Sync);
      s.tracker.expect(Sent.Parse, true, 'pgfence_t');
      s.tracker.expect(Sent.Describe, true);
      s.tracker.expect(Sent.Sync);
      s.tracker.expect(Sent.Query);
      for (let i = 0; i < 3; i++) s.timer.sent();
      const got = Buffer.concat([s.receive(serverStream.subarray(0, cut)), s.receive(serverStream.subarray(cut))]);
      const right = got.equals(expected) && s.tracker.idle && s.timer.pending === 0 && !s.toClient.failed && s.toClient.breach === null;
      if (!right && failures.push(cut) >= 5) break;
    }
    expect(failures).toEqual([]);
  });

  it('hands out what it collected once: take() empties', () => {
    const s = setup();
    s.tracker.expect(Sent.Query);
    expect(s.receive(commandComplete('SELECT 0'))).toEqual(commandComplete('SELECT 0'));
    expect(s.toClient.take()).toEqual([]);
  });
});
