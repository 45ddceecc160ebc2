// A work queue with client-go's semantics: a key is queued at most once, a
// key being processed is never handed out again until done() (an add while
// it runs marks it dirty and requeues it then), delayed and rate-limited
// adds, and a shutdown that lets in-flight work drain. Keys carry a priority,
// as in controller-runtime's priority queue: the highest is handed out first,
// in the order added within one priority; adding a queued key again with a
// higher priority moves it up (never down). The default priority is 0.
import { KeyBackoff, type BackoffOptions } from './backoff.js';
import { PriorityBuckets } from './priority-buckets.js';

export interface WorkQueueHooks {
  /** Called with how long a key waited in the queue before get() handed it out. */
  onGet?: (waitedMs: number) => void;
  onAdd?: () => void;
  onRetry?: () => void;
  onDepth?: (depth: number) => void;
}

export interface AddOptions {
  /** Higher first; default 0. */
  priority?: number;
}

export class WorkQueue {
  private readonly queue = new PriorityBuckets<string>();
  /** The priority a dirty key is queued (or will be requeued by done()) with. */
  private readonly priorities = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; priority: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly backoff: KeyBackoff<string>;
  private shuttingDown = false;

  constructor(
    backoff: BackoffOptions = { baseMs: 5, maxMs: 300_000, jitter: 0.1 },
    private readonly hooks: WorkQueueHooks = {},
  ) {
    this.backoff = new KeyBackoff(backoff);
  }

  get length(): number {
    return this.queue.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string, options: AddOptions = {}): void {
    if (this.shuttingDown) return;
    const priority = options.priority ?? 0;
    if (this.dirty.has(key)) {
      // Already waiting: only a higher priority changes anything (it moves the key up).
      const before = this.priorities.get(key) ?? 0;
      if (priority <= before) return;
      this.priorities.set(key, priority);
      if (!this.processing.has(key)) this.queue.move(key, before, priority);
      return;
    }
    this.hooks.onAdd?.();
    this.dirty.add(key);
    this.priorities.set(key, priority);
    if (!this.addedAt.has(key)) this.addedAt.set(key, Date.now());
    if (this.processing.has(key)) return; // requeued by done()
    this.push(key);
  }

  /** Adds `key` after `ms`; of several pending delays for one key the earliest wins (with the highest priority asked). */
  addAfter(key: string, ms: number, options: AddOptions = {}): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key, options);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.timers.get(key);
    const priority = Math.max(options.priority ?? 0, pending?.priority ?? -Infinity);
    if (pending && pending.at <= at) {
      pending.priority = priority;
      return;
    }
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      const fired = this.timers.get(key);
      this.timers.delete(key);
      this.add(key, { priority: fired?.priority ?? priority });
    }, ms);
    timer.unref();
    this.timers.set(key, { at, priority, timer });
  }

  /** Adds `key` after its per-key backoff; returns the delay chosen. */
  addRateLimited(key: string): number {
    const delay = this.backoff.next(key);
    this.hooks.onRetry?.();
    this.addAfter(key, delay);
    return delay;
  }

  /** Stops the backoff of `key`: its next failure starts from the base delay. */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  retries(key: string): number {
    return this.backoff.retries(key);
  }

  /** The next key to process; undefined once the queue is shut down (queued keys are not started then). */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.pop();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    else this.priorities.delete(key);
    if (this.processing.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Stops handing out keys and resolves when every key in flight is done. */
  async shutDownWithDrain(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
    if (this.processing.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
      return;
    }
    this.queue.push(key, this.priorities.get(key) ?? 0);
    this.hooks.onDepth?.(this.queue.size);
  }

  private pop(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.hooks.onDepth?.(this.queue.size);
    this.take(key);
    return key;
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.priorities.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.hooks.onGet?.(Date.now() - added);
  }
}
