// The waiting keys of a work queue by priority: the highest priority first, in the order added
// within one priority. Few distinct priorities are expected (recovery.priority classes), so
// each has a bucket (a Set keeps insertion order and removes in O(1)) and the list of
// priorities in use is kept sorted.
export class PriorityBuckets<T> {
  private readonly buckets = new Map<number, Set<T>>();
  /** Priorities with a non-empty bucket, highest first. */
  private readonly order: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(item: T, priority: number): void {
    let bucket = this.buckets.get(priority);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(priority, bucket);
      const at = this.order.findIndex((p) => p < priority);
      this.order.splice(at < 0 ? this.order.length : at, 0, priority);
    }
    if (bucket.has(item)) return;
    bucket.add(item);
    this.count++;
  }

  /** The first item of the highest priority, removed. */
  shift(): T | undefined {
    const priority = this.order[0];
    if (priority === undefined) return undefined;
    const bucket = this.buckets.get(priority)!;
    const item = bucket.values().next().value as T;
    this.remove(item, priority);
    return item;
  }

  /** Moves a waiting item to another priority, at the end of its bucket. */
  move(item: T, from: number, to: number): void {
    if (!this.buckets.get(from)?.has(item)) return;
    this.remove(item, from);
    this.push(item, to);
  }

  private remove(item: T, priority: number): void {
    const bucket = this.buckets.get(priority);
    if (!bucket?.delete(item)) return;
    this.count--;
    if (bucket.size === 0) {
      this.buckets.delete(priority);
      this.order.splice(this.order.indexOf(priority), 1);
    }
  }
}
