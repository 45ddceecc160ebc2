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

describe('WorkQueue priorities', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  async function drain(queue: WorkQueue): Promise<string[]> {
    const out: string[] = [];
    while (queue.length > 0) {
      const key = (await queue.get())!;
      out.push(key);
      queue.done(key);
    }
    return out;
  }

  it('hands out the highest priority first, in the order added within one priority', async () => {
    const queue = new WorkQueue();
    queue.add('ns/low-1', { priority: -100 });
    queue.add('ns/plain-1');
    queue.add('ns/high-1', { priority: 100 });
    queue.add('ns/plain-2', { priority: 0 });
    queue.add('ns/high-2', { priority: 100 });
    queue.add('ns/low-2', { priority: -100 });
    queue.add('ns/mid', { priority: 5 });
    expect(queue.length).toBe(7);
    expect(await drain(queue)).toEqual([
      'ns/high-1',
      'ns/high-2',
      'ns/mid',
      'ns/plain-1',
      'ns/plain-2',
      'ns/low-1',
      'ns/low-2',
    ]);
  });

  it('moves a waiting key up when it is added again with a higher priority, never down', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/c', { priority: 10 });
    queue.add('ns/b', { priority: 50 }); // up, ahead of c
    queue.add('ns/c', { priority: -5 }); // not down
    queue.add('ns/c'); // nor back to the default
    expect(queue.length).toBe(3);
    expect(await drain(queue)).toEqual(['ns/b', 'ns/c', 'ns/a']);
  });

  it('requeues a key added while it was processed with the highest priority asked meanwhile', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    const key = (await queue.get())!;
    queue.add('ns/b', { priority: 10 });
    queue.add('ns/a', { priority: 1 });
    queue.add('ns/a', { priority: 20 });
    queue.add('ns/a', { priority: 3 });
    queue.done(key);
    expect(await drain(queue)).toEqual(['ns/a', 'ns/b']);
  });

  it("forgets a key's priority once it is handed out: a later plain add is plain again", async () => {
    const queue = new WorkQueue();
    queue.add('ns/a', { priority: 100 });
    expect(await drain(queue)).toEqual(['ns/a']);
    queue.add('ns/b', { priority: 1 });
    queue.add('ns/a');
    expect(await drain(queue)).toEqual(['ns/b', 'ns/a']);
  });

  it('keeps the priority of a delayed add (the highest of several pending delays)', async () => {
    const queue = new WorkQueue();
    queue.addAfter('ns/a', 1000, { priority: 7 });
    queue.addAfter('ns/a', 2000); // later, lower: the pending 1 s add keeps priority 7
    queue.add('ns/b');
    jest.advanceTimersByTime(1000);
    queue.add('ns/c', { priority: 3 });
    expect(await drain(queue)).toEqual(['ns/a', 'ns/c', 'ns/b']);
  });

  it('wakes a waiting get() whatever the priority, and counts depth across priorities', async () => {
    const depths: number[] = [];
    const queue = new WorkQueue(undefined, { onDepth: (depth) => depths.push(depth) });
    const waiting = queue.get();
    queue.add('ns/x', { priority: -3 });
    await expect(waiting).resolves.toBe('ns/x');
    queue.add('ns/y', { priority: 2 });
    queue.add('ns/z', { priority: -2 });
    expect(depths).toEqual([1, 2]);
    expect(await queue.get()).toBe('ns/y');
    expect(depths).toEqual([1, 2, 1]);
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
