import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { watchProcessErrors } from '../support/process-errors.js';
import { startTestProxy, TEST_TENANTS } from '../support/proxy.js';
import { queryMessage } from '../support/wire.js';
import {
  type CaseState,
  firstMalformedMessage,
  FUZZ_MAX_MESSAGE_BYTES,
  fuzzConfig,
  generateCase,
  type PoolMode,
  typedCompletion,
} from './protocol-fuzz.js';
import { formatFailure, runProtocolFuzz } from './run-cases.js';

/**
 * Malformed and mutated client traffic, in every client state, never ends pgfence and never
 * disturbs the other clients (see run-cases.ts). A fixed seed and a fixed number of cases; the long
 * run with any seed, which also replays a failure printed here, is scripts/fuzz-protocol.ts.
 */
const SEED = 20_260_117;
const CASES = 750;

describe.each(['session', 'transaction'] as const)('protocol fuzzing, %s pooling', (mode: PoolMode) => {
  it(`${CASES} seeded cases end only the client that sent them`, async () => {
    const proxy = await startTestProxy(fuzzConfig(mode));
    const processErrors = watchProcessErrors();
    try {
      const report = await runProtocolFuzz(
        {
          port: proxy.port,
          mode,
          tenants: TEST_TENANTS,
          token: (tenant) => proxy.token(tenant),
          connect: (tenant, extra) => proxy.connect(tenant, extra),
        },
        { seed: SEED, count: CASES, processErrors },
      );
      expect(report.failures.map(formatFailure)).toEqual([]);
      expect(report.casesRun).toBe(CASES);
    } finally {
      processErrors.stop();
      await proxy.close();
    }
  }, 120_000);
});

describe('protocol fuzz cases', () => {
  const tokens = new Map(TEST_TENANTS.map((t) => [t, `token-of-${t}`.padEnd(200, '.')]));

  it('are a function of seed, mode and case number alone', () => {
    const a = generateCase(SEED, 'transaction', 17, TEST_TENANTS, tokens);
    expect(generateCase(SEED, 'transaction', 17, TEST_TENANTS, tokens)).toEqual(a);
    expect(generateCase(SEED, 'transaction', 18, TEST_TENANTS, tokens)).not.toEqual(a);
    expect(generateCase(SEED + 1, 'transaction', 17, TEST_TENANTS, tokens)).not.toEqual(a);
  });

  it('reach every state of their mode, and never put the queued state in session pooling', () => {
    for (const mode of ['session', 'transaction'] as const) {
      const seen = new Map<CaseState, number>();
      for (let i = 0; i < CASES; i++) {
        const { state } = generateCase(SEED, mode, i, TEST_TENANTS, tokens);
        seen.set(state, (seen.get(state) ?? 0) + 1);
      }
      const expected: CaseState[] = ['startup', 'password', 'idle', 'transaction', 'batch', 'copy', ...(mode === 'transaction' ? (['queued'] as const) : [])];
      expect([...seen.keys()].sort(), mode).toEqual(expected.sort());
      for (const state of expected) expect(seen.get(state), `${mode} ${state}`).toBeGreaterThan(CASES / 40);
    }
  });

  it("judge the issue's byte strings malformed, and valid messages not", () => {
    for (const hex of ['5000000007616263', '4400000004', '440000000753616263', '430000000753616263', '5100000007616263', '4200000007616263', '500000000d0053454c4543542031000005']) {
      expect(firstMalformedMessage(Buffer.from(hex, 'hex'), FUZZ_MAX_MESSAGE_BYTES), hex).toMatch(/^message #0 /);
    }
    const valid = Buffer.concat([
      queryMessage('SELECT 1'),
      serialize.parse({ text: 'SELECT $1::int', types: [23] }),
      serialize.bind({ values: ['1', null] }),
      serialize.describe({ type: 'S', name: 's1' }),
      serialize.close({ type: 'P' }),
      serialize.sync(),
    ]);
    expect(firstMalformedMessage(valid, FUZZ_MAX_MESSAGE_BYTES)).toBeNull();
    // After a length pgfence refuses nothing is read; a Terminate may be skipped, so reading goes on.
    expect(firstMalformedMessage(Buffer.from('517fffffff5100000007616263', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toBeNull();
    expect(firstMalformedMessage(Buffer.from('58000000045100000007616263', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toMatch(/^message #1 /);
  });

  it('complete a cut message to its declared length, and only the header of a refused one', () => {
    const query = queryMessage('SELECT 1');
    expect(typedCompletion(query.subarray(0, 7), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: query.length - 7, refused: false, terminates: false });
    expect(typedCompletion(Buffer.from('51000000', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 1, refused: true, terminates: false });
    expect(typedCompletion(Buffer.from('5100010001', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 0, refused: true, terminates: false });
    expect(typedCompletion(Buffer.from('58000000', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 1, refused: true, terminates: false });
    expect(typedCompletion(Buffer.from('5800000008', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 4, refused: false, terminates: true });
    // pgfence may skip a Terminate (while it skips to Sync): what follows is completed too.
    expect(typedCompletion(Buffer.from('580000000451000000', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 1, refused: true, terminates: true });
    expect(typedCompletion(Buffer.from('58000000045100000010', 'hex'), FUZZ_MAX_MESSAGE_BYTES)).toEqual({ padding: 12, refused: false, terminates: true });
  });
});
