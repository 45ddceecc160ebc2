import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { KeyBackoff } from '../../src/runtime/backoff.js';
import { WorkQueue } from '../../src/runtime/workqueue.js';

describe('WorkQueue', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('hands out a key added many times once', async () => {
    const queue = new WorkQueue();
    for (let i = 0; i < 100; i++) queue.add('ns/a');
    queue.add('ns/b');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('ns/a');
    expect(await queue.get()).toBe('ns/b');
    expect(queue.length).toBe(0);
  });

  it('never hands out a key that is being processed; an add meanwhile requeues it after done()', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    const key = await queue.get();
    queue.add('ns/a');
    queue.add('ns/a');
    expect(queue.length).toBe(0);
    queue.done(key!);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('ns/a');
    queue.done('ns/a');
    expect(queue.length).toBe(0);
  });

  it('wakes a waiting get() when a key arrives', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add('ns/late');
    await expect(waiting).resolves.toBe('ns/late');
  });

  it('adds a delayed key when its time comes, earliest delay winning', async () => {
    const queue = new WorkQueue();
    queue.addAfter('ns/a', 5000);
    queue.addAfter('ns/a', 1000);
    queue.addAfter('ns/a', 3000);
    jest.advanceTimersByTime(999);
    expect(queue.length).toBe(0);
    jest.advanceTimersByTime(1);
    expect(queue.length).toBe(1);
    await queue.get();
    queue.done('ns/a');
    jest.advanceTimersByTime(10_000);
    expect(queue.length).toBe(0);
  });

  it('retries with growing delays until forgotten', () => {
    const queue = new WorkQueue({ baseMs: 10, maxMs: 1000 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => queue.addRateLimited('ns/a'))).toEqual([
      10, 20, 40, 80, 160, 320, 640, 1000,
    ]);
    expect(queue.retries('ns/a')).toBe(8);
    queue.forget('ns/a');
    expect(queue.addRateLimited('ns/a')).toBe(10);
  });

  it('drains on shutdown: in-flight work finishes, queued keys are not started, get() ends', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    const key = await queue.get();
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    queue.add('ns/c');
    queue.done(key!);
    await drain;
    expect(drained).toBe(true);
    await expect(queue.get()).resolves.toBeUndefined();
  });
});

describe('KeyBackoff', () => {
  it('spreads delays with jitter but never past the cap', () => {
    const backoff = new KeyBackoff<string>({ baseMs: 100, maxMs: 250, jitter: 0.5 }, () => 1);
    expect(backoff.next('k')).toBe(150);
    expect(backoff.next('k')).toBe(250);
    expect(backoff.next('k')).toBe(250);
  });
});
