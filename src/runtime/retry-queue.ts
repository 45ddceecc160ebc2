// A bounded FIFO of work that must reach a server that may be away for a while (the API server
// during an outage or an upgrade): an item whose write failed for a passing reason goes back to
// the head, and nothing is taken until a back-off has passed; each failure in a row doubles the
// pause, a success resets it. Full, it refuses new items and counts them. Pure: the time is
// given, nothing here waits or writes.
import { KeyBackoff, type BackoffOptions } from './backoff.js';

export interface RetryQueueOptions {
  /** Items held at most (waiting, taken and not yet settled, put back); beyond it offer() refuses. */
  cap: number;
  /** The pause after each failure in a row: base × 2^failures, capped, plus jitter. */
  backoff: BackoffOptions;
  random?: () => number;
}

export class RetryQueue<T> {
  /** Waiting items by the order they were offered in (seq), put-back ones included. */
  private readonly items: Array<{ seq: number; item: T }> = [];
  /** Items taken and not yet settled, with their place in the order. */
  private readonly taken = new Map<T, number>();
  private seq = 0;
  private readonly backoff: KeyBackoff<'server'>;
  private resumeAt = 0;
  /** Items refused because the queue was full. */
  refused = 0;
  /** Items put back after a failed write, in all. */
  retried = 0;

  constructor(private readonly options: RetryQueueOptions) {
    this.backoff = new KeyBackoff(options.backoff, options.random);
  }

  get size(): number {
    return this.items.length;
  }

  /** Failures in a row since the last success. */
  get failures(): number {
    return this.backoff.retries('server');
  }

  /** Adds an item at the tail; false (and counted) when full, taken items counting until settled. */
  offer(item: T): boolean {
    if (this.items.length + this.taken.size >= this.options.cap) {
      this.refused++;
      return false;
    }
    this.items.push({ seq: this.seq++, item });
    return true;
  }

  /** The next item, unless the queue is empty or pausing after a failure at `now`. */
  take(now: number): T | undefined {
    if (now < this.resumeAt) return undefined;
    const next = this.items.shift();
    if (!next) return undefined;
    this.taken.set(next.item, next.seq);
    return next.item;
  }

  /** Milliseconds until take() gives items again (0: now). */
  pauseLeft(now: number): number {
    return Math.max(0, this.resumeAt - now);
  }

  /**
   * A write of `item` failed for a reason that may pass: the item goes back to its place in the
   * order (before anything offered after it), taking from the queue pauses, and the pause left is
   * returned. Put back even when full: it was admitted once. Writes that were in flight together
   * and fail during the same pause count as one failure, so that the pause grows per round of
   * attempts, not per write.
   */
  failed(item: T, now: number): number {
    const seq = this.taken.get(item) ?? -1;
    this.taken.delete(item);
    const at = this.items.findIndex((waiting) => waiting.seq > seq);
    this.items.splice(at < 0 ? this.items.length : at, 0, { seq, item });
    this.retried++;
    if (now >= this.resumeAt) this.resumeAt = now + this.backoff.next('server');
    return this.resumeAt - now;
  }

  /** The write of a taken item is over (written, or given up on). */
  settled(item: T): void {
    this.taken.delete(item);
  }

  /** A write succeeded: the server is back, the pause resets. */
  succeeded(): void {
    this.backoff.forget('server');
  }
}
