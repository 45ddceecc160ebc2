// Per-key exponential backoff, as client-go's ItemExponentialFailureRateLimiter:
// base * 2^failures, capped; forgetting a key resets it.
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Fraction of random spread added to each delay, so retries of many keys do not align. */
  jitter?: number;
}

export class KeyBackoff<K> {
  private readonly failures = new Map<K, number>();

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next retry of `key`, counting this failure. */
  next(key: K): number {
    const count = this.failures.get(key) ?? 0;
    this.failures.set(key, count + 1);
    const raw = Math.min(this.options.maxMs, this.options.baseMs * 2 ** Math.min(count, 52));
    const spread = this.options.jitter ? raw * this.options.jitter * this.random() : 0;
    return Math.min(this.options.maxMs, Math.round(raw + spread));
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }
}
