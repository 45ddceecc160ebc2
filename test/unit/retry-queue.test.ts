// The bounded queue of unsent work behind the Event recorder (src/runtime/retry-queue.ts): order,
// the cap and its count, the pause after failures and its reset, on a given clock.
import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../../src/runtime/kube-client.js';
import { isPassingFailure } from '../../src/runtime/events.js';
import { RetryQueue } from '../../src/runtime/retry-queue.js';

const queue = (cap = 3) => new RetryQueue<string>({ cap, backoff: { baseMs: 100, maxMs: 1_000 } });

describe('RetryQueue', () => {
  it('gives items in the order offered', () => {
    const q = queue();
    for (const item of ['a', 'b', 'c']) expect(q.offer(item)).toBe(true);
    expect([q.take(0), q.take(0), q.take(0), q.take(0)]).toEqual(['a', 'b', 'c', undefined]);
  });

  it('refuses items beyond its cap and counts them', () => {
    const q = queue(2);
    expect([q.offer('a'), q.offer('b'), q.offer('c'), q.offer('d')]).toEqual([true, true, false, false]);
    expect(q.refused).toBe(2);
    expect(q.size).toBe(2);
    // A taken item holds its place until settled (its write may fail and bring it back).
    const a = q.take(0)!;
    expect(q.offer('e')).toBe(false);
    q.settled(a);
    expect(q.offer('f')).toBe(true);
    expect(q.refused).toBe(3);
  });

  it('puts a failed item back first and gives nothing until the pause is over', () => {
    const q = queue();
    q.offer('a');
    q.offer('b');
    const a = q.take(1_000)!;
    expect(q.failed(a, 1_000)).toBe(100);
    expect(q.take(1_099)).toBeUndefined();
    expect(q.pauseLeft(1_050)).toBe(50);
    expect(q.take(1_100)).toBe('a');
    q.settled('a');
    expect(q.take(1_100)).toBe('b');
    expect(q.retried).toBe(1);
  });

  it('doubles the pause per failure in a row, up to its maximum, and resets it on a success', () => {
    const q = queue();
    q.offer('a');
    const pauses: number[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      const item = q.take(now)!;
      pauses.push(q.failed(item, now));
      now += pauses.at(-1)!;
    }
    expect(pauses).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(q.failures).toBe(6);
    q.take(now);
    q.succeeded();
    expect(q.failures).toBe(0);
    q.offer('b');
    expect(q.failed(q.take(now)!, now)).toBe(100);
  });

  it('counts writes that fail together, in the same pause, as one failure', () => {
    const q = queue();
    for (const item of ['a', 'b', 'c']) q.offer(item);
    const taken = [q.take(0)!, q.take(0)!, q.take(0)!];
    expect(taken.map((item) => q.failed(item, 10))).toEqual([100, 100, 100]);
    expect(q.failures).toBe(1);
    expect(q.size).toBe(3);
    // Back in the order they were offered, whatever order they failed in.
    expect([q.take(110), q.take(110), q.take(110)]).toEqual(['a', 'b', 'c']);
  });

  it('puts failed items back before those offered after them, behind those offered before', () => {
    const q = queue(5);
    for (const item of ['a', 'b', 'c', 'd']) q.offer(item);
    const b = [q.take(0)!, q.take(0)!][1]!; // a is being written, b fails
    q.failed(b, 0);
    expect([q.take(100), q.take(100), q.take(100)]).toEqual(['b', 'c', 'd']);
  });

  it('takes a failed item back: it was admitted once, and keeps its place in the cap', () => {
    const q = queue(1);
    q.offer('a');
    const a = q.take(0)!;
    q.failed(a, 0);
    expect(q.size).toBe(1);
    expect(q.offer('b')).toBe(false);
    expect(q.take(100)).toBe('a');
  });
});

describe('which failed Event writes are tried again', () => {
  it('no answer, 5xx, 429 and 408: yes; any other refusal: no', () => {
    expect(isPassingFailure(new Error('connect ECONNREFUSED 127.0.0.1:6443'))).toBe(true);
    for (const status of [500, 503, 504, 429, 408]) expect(isPassingFailure(new ApiError(status, '', ''))).toBe(true);
    for (const status of [400, 403, 404, 409, 422]) expect(isPassingFailure(new ApiError(status, '', ''))).toBe(false);
  });
});
