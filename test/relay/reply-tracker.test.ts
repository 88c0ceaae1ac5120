import { describe, expect, it } from 'vitest';
import { ReplyTracker, Sent, type StandIn } from '../../src/relay/reply-tracker.js';

/** Feeds server replies other than ErrorResponse and ReadyForQuery (type letters); returns which are dropped. */
function replies(tracker: ReplyTracker, types: string): boolean[] {
  return [...types].map((t) => tracker.onReply(t.charCodeAt(0)));
}

const standIn = (marker: string): StandIn => ({ marker, error: { severity: 'ERROR', sqlstate: '42501', message: `refused ${marker}` } });

describe('ReplyTracker', () => {
  it('is idle with nothing sent, and after clear()', () => {
    const tracker = new ReplyTracker();
    expect(tracker.idle).toBe(true);
    tracker.expect(Sent.Query);
    expect(tracker.idle).toBe(false);
    tracker.clear();
    expect(tracker.idle).toBe(true);
    // A stray reply with nothing outstanding is neither dropped nor fatal.
    expect(replies(tracker, '123nT')).toEqual([false, false, false, false, false]);
    expect(tracker.idle).toBe(true);
  });

  it('drops the replies to an injected Close + Parse and passes the client\'s own', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Close, true);
    tracker.expect(Sent.Parse, true, 'pgfence_a');
    tracker.expect(Sent.Parse, false, 'pgfence_b');
    tracker.expect(Sent.Bind);
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Sync);
    expect(replies(tracker, '3112')).toEqual([true, true, false, false]);
    expect(replies(tracker, 'DDC')).toEqual([false, false, false]);
    expect(tracker.idle).toBe(false);
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('places Describe statement replies: t then T, or t then n, each ending its Describe', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Describe);
    tracker.expect(Sent.Describe, true);
    tracker.expect(Sent.Describe);
    // t does not end a Describe (T or n follows); the dropped Describe's t and T are dropped, the others not.
    expect(replies(tracker, 'tT')).toEqual([false, false]);
    expect(replies(tracker, 'tT')).toEqual([true, true]);
    expect(tracker.idle).toBe(false);
    expect(replies(tracker, 'tn')).toEqual([false, false]);
    expect(tracker.idle).toBe(true);
  });

  it('places Execute replies: rows then CommandComplete, PortalSuspended or EmptyQueryResponse end it', () => {
    for (const end of ['C', 's', 'I']) {
      const tracker = new ReplyTracker();
      tracker.expect(Sent.Execute);
      tracker.expect(Sent.Execute);
      expect(replies(tracker, 'DDD')).toEqual([false, false, false]);
      expect(tracker.idle).toBe(false);
      expect(replies(tracker, end)).toEqual([false]);
      expect(tracker.idle).toBe(false);
      expect(replies(tracker, `D${end}`)).toEqual([false, false]);
      expect(tracker.idle).toBe(true);
    }
  });

  it('lets a RowDescription head the rows of a simple Query without ending anything', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Query);
    expect(replies(tracker, 'TDDCTDC')).toEqual(Array(7).fill(false));
    expect(tracker.idle).toBe(false);
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('on an error mid-batch skips to the Sync and reports the skipped Parse names, the failing one included', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Parse, false, 'pgfence_ok');
    tracker.expect(Sent.Bind);
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Close, true);
    tracker.expect(Sent.Parse, false, 'pgfence_fails');
    tracker.expect(Sent.Parse);
    tracker.expect(Sent.Parse, true, 'pgfence_skipped');
    tracker.expect(Sent.Bind);
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Sync);
    tracker.expect(Sent.Parse, false, 'pgfence_next_batch');
    tracker.expect(Sent.Sync);

    expect(replies(tracker, '12DC3')).toEqual([false, false, false, false, true]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: ['pgfence_fails', 'pgfence_skipped'], stillPrepared: [] });
    tracker.onReady();
    // The next batch is placed normally: its Parse's name is reported when it fails in turn.
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: ['pgfence_next_batch'], stillPrepared: [] });
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('places a stand-in Execute\'s error, and only when the error answers the stand-in', () => {
    const refused = standIn('pgfence_rejected_1_1');
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Parse);
    tracker.expect(Sent.Bind);
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Execute, false, refused);
    tracker.expect(Sent.Sync);
    expect(replies(tracker, '12C')).toEqual([false, false, false]);
    expect(tracker.onError()).toEqual({ standIn: refused, unprepared: [], stillPrepared: [] });
    tracker.onReady();
    expect(tracker.idle).toBe(true);

    // An earlier error skips the stand-in: the error is the server's own.
    const earlier = new ReplyTracker();
    earlier.expect(Sent.Bind);
    earlier.expect(Sent.Execute, false, standIn('pgfence_rejected_1_2'));
    earlier.expect(Sent.Sync);
    expect(earlier.onError()).toEqual({ standIn: null, unprepared: [], stillPrepared: [] });

    // A plain Execute's error has no stand-in.
    const plain = new ReplyTracker();
    plain.expect(Sent.Execute);
    plain.expect(Sent.Sync);
    expect(plain.onError().standIn).toBeNull();
  });

  it('places a refused simple Query\'s stand-in (Execute + Sync) among pipelined Queries', () => {
    const refused = standIn('pgfence_rejected_1_1');
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Query);
    tracker.expect(Sent.Execute, false, refused);
    tracker.expect(Sent.Sync);
    tracker.expect(Sent.Query);
    expect(replies(tracker, 'TDC')).toEqual([false, false, false]);
    tracker.onReady();
    expect(tracker.onError().standIn).toBe(refused);
    tracker.onReady();
    expect(replies(tracker, 'TDC')).toEqual([false, false, false]);
    expect(tracker.idle).toBe(false);
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('does not skip extended entries after a simple Query that fails', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Query);
    tracker.expect(Sent.Parse, false, 'pgfence_after');
    tracker.expect(Sent.Bind);
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Sync);
    expect(replies(tracker, 'TD')).toEqual([false, false]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: [], stillPrepared: [] });
    tracker.onReady();
    // The Parse still waits for its reply: its failure reports its name.
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: ['pgfence_after'], stillPrepared: [] });
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('places pipelined Syncs one ReadyForQuery each, an error affecting only its own batch', () => {
    const tracker = new ReplyTracker();
    for (const name of ['pgfence_1', 'pgfence_2', 'pgfence_3']) {
      tracker.expect(Sent.Close, true);
      tracker.expect(Sent.Parse, true, name);
      tracker.expect(Sent.Bind);
      tracker.expect(Sent.Execute);
      tracker.expect(Sent.Sync);
    }
    tracker.expect(Sent.Query);

    expect(replies(tracker, '312DC')).toEqual([true, true, false, false, false]);
    tracker.onReady();
    expect(replies(tracker, '31')).toEqual([true, true]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: [], stillPrepared: [] });
    tracker.onReady();
    expect(replies(tracker, '312')).toEqual([true, true, false]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: [], stillPrepared: [] });
    tracker.onReady();
    expect(tracker.idle).toBe(false);
    expect(replies(tracker, 'TDC')).toEqual([false, false, false]);
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('treats an error at the Sync itself (a failed implicit commit) as ending nothing but that batch', () => {
    const tracker = new ReplyTracker();
    tracker.expect(Sent.Execute);
    tracker.expect(Sent.Sync);
    tracker.expect(Sent.Parse, false, 'pgfence_next');
    tracker.expect(Sent.Sync);
    expect(replies(tracker, 'C')).toEqual([false]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: [], stillPrepared: [] });
    tracker.onReady();
    expect(replies(tracker, '1')).toEqual([false]);
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });

  it('keeps drops and notes aligned past its compaction of a long pipeline', () => {
    const tracker = new ReplyTracker();
    for (let i = 0; i < 1500; i++) {
      tracker.expect(Sent.Bind);
      tracker.expect(Sent.Sync);
    }
    tracker.expect(Sent.Close, true);
    tracker.expect(Sent.Parse, false, 'pgfence_late');
    tracker.expect(Sent.Sync);
    for (let i = 0; i < 1500; i++) {
      expect(tracker.onReply('2'.charCodeAt(0))).toBe(false);
      tracker.onReady();
    }
    expect(replies(tracker, '3')).toEqual([true]);
    expect(tracker.onError()).toEqual({ standIn: null, unprepared: ['pgfence_late'], stillPrepared: [] });
    tracker.onReady();
    expect(tracker.idle).toBe(true);
  });
});
