// Runs one reconciler: workers take keys from the work queue (never one key
// twice at once), call reconcile, and turn its outcome into forget, backoff
// retry, or requeue-after. Watch sources only ever enqueue keys.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logging.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import type { Runnable } from './manager.js';
import { isConflict, isNotFound } from './kube-client.js';
import { RequeueAfterError, TerminalError, type Reconciler } from './reconciler.js';
import { WorkQueue, type AddOptions } from './workqueue.js';
import { traceNow, traces } from './trace.js';
import type { BackoffOptions } from './backoff.js';

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Reconciles of different keys that may run at once. */
  concurrency?: number;
  backoff?: BackoffOptions;
  /** Started with the controller (watches that enqueue keys); stopped with it. */
  sources?: Array<(controller: Controller, signal: AbortSignal) => Promise<void>>;
}

export class Controller implements Runnable {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly logger: Logger;

  constructor(private readonly options: ControllerOptions) {
    this.name = options.name;
    this.logger = options.logger.child({ controller: options.name });
    const metrics = options.metrics;
    const labels = { controller: options.name };
    this.queue = new WorkQueue(options.backoff, {
      onAdd: () => metrics?.queueAdds.inc(labels),
      onRetry: () => metrics?.queueRetries.inc(labels),
      onDepth: (depth) => metrics?.queueDepth.set(labels, depth),
      onGet: (waitedMs) => metrics?.queueLatency.observe(labels, waitedMs / 1000),
    });
  }

  /** Enqueues `key`; a higher `priority` (default 0) is reconciled before lower ones waiting. */
  enqueue(key: string, options: AddOptions = {}): void {
    if (traces.enqueue.hasSubscribers) traces.enqueue.publish({ controller: this.name, key, at: traceNow() });
    this.queue.add(key, options);
  }

  /** Enqueues `key` after `ms`; of several pending delays for one key the earliest wins. */
  enqueueAfter(key: string, ms: number, options: AddOptions = {}): void {
    this.queue.addAfter(key, ms, options);
  }

  async run(signal: AbortSignal): Promise<void> {
    const sources = (this.options.sources ?? []).map((start) => start(this, signal));
    const workers = Array.from({ length: this.options.concurrency ?? 1 }, () => this.worker(signal));
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.queue.shutDownWithDrain();
    await Promise.all([...workers, ...sources]);
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.processItem(key, signal);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async processItem(key: string, signal: AbortSignal): Promise<void> {
    const metrics = this.options.metrics;
    const labels = { controller: this.name };
    const reconcileId = randomUUID();
    const logger = this.logger.child({ key, reconcileId });
    const started = performance.now();
    const record = (result: string) => {
      const seconds = (performance.now() - started) / 1000;
      if (traces.reconcile.hasSubscribers) {
        traces.reconcile.publish({
          controller: this.name,
          key,
          start: performance.timeOrigin + started,
          ms: seconds * 1000,
          result,
        });
      }
      metrics?.reconcileTotal.inc({ ...labels, result });
      metrics?.reconcileDuration.observe(labels, seconds);
      metrics?.workDuration.observe(labels, seconds);
    };
    try {
      const result = await this.options.reconciler.reconcile({ key, reconcileId, logger, signal });
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, result.requeueAfterMs);
        record('requeue_after');
      } else {
        record('success');
      }
    } catch (error) {
      if (isExpectedRace(error)) {
        // A write based on a read the API server has moved past (409), or an object deleted
        // meanwhile (404): routine with several writers and a lagging cache, not a fault. Looked
        // at again, with the usual backoff, from the fresher cache.
        const retryInMs = this.queue.addRateLimited(key);
        logger.debug({ err: error, retryInMs }, 'the object changed or went away meanwhile; looking again');
        record('conflict');
        return;
      }
      metrics?.reconcileErrors.inc(labels);
      if (error instanceof TerminalError) {
        this.queue.forget(key);
        logger.error({ err: error }, 'reconcile failed for good; not retrying');
        record('terminal_error');
      } else if (error instanceof RequeueAfterError) {
        this.queue.addAfter(key, error.requeueAfterMs);
        logger.info({ requeueAfterMs: error.requeueAfterMs }, error.message);
        record('requeue_after');
      } else {
        const retryInMs = this.queue.addRateLimited(key);
        logger.error({ err: error, retryInMs, retries: this.queue.retries(key) }, 'reconcile failed; retrying');
        record('error');
      }
    }
  }
}

/** An API answer that only says the reconcile raced another writer or a deletion. */
function isExpectedRace(error: unknown): boolean {
  return isConflict(error) || isNotFound(error);
}
