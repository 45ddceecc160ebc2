// Kubernetes Events for what the controller did, as `kubectl describe` shows
// them. A repeat of the same event for the same object within the
// aggregation window bumps its count instead of creating another Event, so
// a flapping condition cannot flood the API server.
//
// Events are written in the background by a few writers, in order, as client-go's broadcaster
// does: a burst of reconciles queues its Events instead of sending them all at once, so that
// they do not compete with the reconciles' own status writes for the API server (in the scale
// bench, 3 Events per VM were half of all requests). A write that fails for a reason that may
// pass (no answer, 5xx, 429) goes back into the queue, and writing pauses with a growing
// back-off: an Event recorded while the API server is down (a crashed VM restarted from the
// cache) is written once it is back. The queue is bounded; when full, new Events are dropped
// and counted (virtfleet_events_dropped_total).
import { rfc3339 } from './time.js';
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../observability/logging.js';
import type { BackoffOptions } from './backoff.js';
import { ApiError, isNotFound, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';
import { RetryQueue } from './retry-queue.js';

export const CORE_EVENT: ResourceType = { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true };

export type EventType = 'Normal' | 'Warning';

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
  lastSeen: number;
}

export interface EventRecorderOptions {
  component: string;
  instance?: string;
  logger: Logger;
  /** Repeats within this window are aggregated into one Event. */
  aggregateWindowMs?: number;
  /** Most distinct events remembered for aggregation. */
  maxRemembered?: number;
  /** Events written at once. Default 4. */
  writers?: number;
  /** Events waiting to be written (or written again); beyond this new ones are dropped. Default 4096. */
  maxQueued?: number;
  /** The pause after a failed write, doubled per failure in a row. Default 500 ms to 30 s, 20 % jitter. */
  retryBackoff?: BackoffOptions;
  /** Where virtfleet_events_dropped_total, _retries_total and virtfleet_events_unsent go. */
  registry?: Registry;
}

/** Why an Event was given up on: the queue was full, or the API server refused it for good. */
export type DropReason = 'queue_full' | 'refused';

interface Pending {
  object: KubeObject;
  type: EventType;
  reason: string;
  message: string;
  at: Date;
  done: () => void;
  /** Set by the first attempt, so that a retry neither counts the repeat again nor makes a second Event. */
  counted?: boolean;
  name?: string;
}

/** No answer, or an answer that says to try later: worth writing again. */
export function isPassingFailure(error: unknown): boolean {
  if (!(error instanceof ApiError)) return true; // refused connection, reset, timeout
  return error.status >= 500 || error.status === 429 || error.status === 408;
}

export interface EventMetrics {
  dropped: Counter<'reason'>;
  retries: Counter;
  unsent: Gauge;
}

/**
 * The recorder's metrics in `registry`: one set per registry, made by the first recorder there
 * (the unsent gauge reads that one; a controller process has one recorder).
 */
export function eventMetrics(registry: Registry, unsent: () => number): EventMetrics {
  const existing = (name: string) => registry.getSingleMetric(name);
  const dropped =
    (existing('virtfleet_events_dropped_total') as Counter<'reason'> | undefined) ??
    new Counter({
      name: 'virtfleet_events_dropped_total',
      help: 'Events given up on, by reason: queue_full (too many waiting, e.g. through a long API outage), refused (the API server refused the Event itself).',
      labelNames: ['reason'],
      registers: [registry],
    });
  const retries =
    (existing('virtfleet_events_retries_total') as Counter | undefined) ??
    new Counter({
      name: 'virtfleet_events_retries_total',
      help: 'Event writes that failed for a passing reason (no answer, 5xx, 429) and were queued again.',
      registers: [registry],
    });
  const unsentGauge =
    (existing('virtfleet_events_unsent') as Gauge | undefined) ??
    new Gauge({
      name: 'virtfleet_events_unsent',
      help: 'Events recorded but not yet written to the API server.',
      registers: [registry],
      collect() {
        this.set(unsent());
      },
    });
  return { dropped, retries, unsent: unsentGauge };
}

export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();
  private readonly queue: RetryQueue<Pending>;
  private writing = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly metrics: EventMetrics | undefined;
  /** Events given up on, by reason (also in virtfleet_events_dropped_total). */
  readonly dropped: Record<DropReason, number> = { queue_full: 0, refused: 0 };

  constructor(
    private readonly client: KubeClient,
    private readonly options: EventRecorderOptions,
  ) {
    this.queue = new RetryQueue<Pending>({
      cap: options.maxQueued ?? 4096,
      backoff: options.retryBackoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.2 },
    });
    this.metrics = options.registry ? eventMetrics(options.registry, () => this.unsent) : undefined;
  }

  /** Events recorded and not yet written (waiting, being written, or waiting to be written again). */
  get unsent(): number {
    return this.queue.size + this.writing;
  }

  /** Writes that failed for a passing reason and were queued again. */
  get retries(): number {
    return this.queue.retried;
  }

  /**
   * Records an event. Resolves once it is written (or given up on): through an API outage, that
   * is once the API server is back. Failures are logged, never thrown: an Event is not worth
   * failing a reconcile, and callers need not wait for it.
   */
  record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    return new Promise((done) => {
      if (!this.queue.offer({ object, type, reason, message, at: new Date(), done })) {
        this.drop('queue_full', reason, object);
        done();
        return;
      }
      this.drain();
    });
  }

  /**
   * Writes one Event now, outside the queue and without aggregation, and throws when it could not
   * be written: for an Event that is a record other processes rely on, whose caller must not go
   * on without it (a queued Event is lost with a killed process, or waits behind a backlog).
   */
  async recordNow(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const at = new Date();
    const meta = object.metadata ?? {};
    const name = eventName(meta.name);
    await this.client.create(CORE_EVENT, this.body(object, type, reason, message, name, rfc3339(at)));
  }

  private body(object: KubeObject, type: EventType, reason: string, message: string, name: string, timestamp: string) {
    const meta = object.metadata ?? {};
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: meta.namespace || 'default' },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: timestamp,
      lastTimestamp: timestamp,
      source: { component: this.options.component },
      reportingComponent: this.options.component,
      reportingInstance: this.options.instance ?? this.options.component,
    };
  }

  private drop(why: DropReason, reason: string, object: KubeObject, error?: unknown): void {
    const count = ++this.dropped[why];
    this.metrics?.dropped.inc({ reason: why });
    const fields = {
      dropped: count,
      reason,
      object: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
    };
    if (why === 'refused') this.options.logger.warn({ ...fields, err: error }, 'could not record an event');
    else if (count % 100 === 1)
      this.options.logger.warn(fields, 'too many Events waiting to be written; dropping new ones');
  }

  private drain(): void {
    while (this.writing < (this.options.writers ?? 4)) {
      const next = this.queue.take(Date.now());
      if (!next) break;
      this.writing++;
      void this.write(next).then((outcome) => {
        this.writing--;
        if (outcome === 'again') {
          const pause = this.queue.failed(next, Date.now());
          this.metrics?.retries.inc();
          this.wakeIn(pause);
        } else {
          this.queue.settled(next);
          if (outcome === 'written' && this.queue.failures > 0) {
            this.options.logger.info(
              { failedAttempts: this.queue.failures, unsent: this.unsent },
              'writing events again: the API server answers',
            );
            this.queue.succeeded();
          }
          next.done();
        }
        this.drain();
      });
    }
    if (this.queue.size > 0 && this.writing === 0) this.wakeIn(this.queue.pauseLeft(Date.now()));
  }

  private wakeIn(ms: number): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.drain();
    }, ms);
    // Unsent Events never keep a stopping process alive.
    this.retryTimer.unref();
  }

  /** Writes one Event: 'written', 'again' (a passing failure: queue it again), or 'dropped'. */
  private async write(pending: Pending): Promise<'written' | 'again' | 'dropped'> {
    const { object, type, reason, message, at: now } = pending;
    const meta = object.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const key = [meta.uid, type, reason, message].join('\u0000');
    const timestamp = rfc3339(now);
    const windowMs = this.options.aggregateWindowMs ?? 10 * 60_000;
    try {
      const previous = this.recent.get(key);
      if (pending.name === undefined && previous && now.getTime() - previous.lastSeen < windowMs) {
        if (!pending.counted) {
          previous.count++;
          previous.lastSeen = Math.max(previous.lastSeen, now.getTime());
          pending.counted = true;
        }
        this.touch(key, previous);
        try {
          await this.client.patch(CORE_EVENT, previous.namespace, previous.name, {
            count: previous.count,
            lastTimestamp: rfc3339(new Date(previous.lastSeen)),
          });
          return 'written';
        } catch (error) {
          if (!isNotFound(error)) throw error; // the Event expired: create a new one below
        }
      }
      // Named once: a create retried after an answer that never came finds its Event made (409).
      pending.name ??= eventName(meta.name);
      const name = pending.name;
      await this.client.create(CORE_EVENT, this.body(object, type, reason, message, name, timestamp));
      this.touch(key, { name, namespace, count: 1, firstTimestamp: timestamp, lastSeen: now.getTime() });
      return 'written';
    } catch (error) {
      if (pending.name && error instanceof ApiError && error.status === 409) {
        // An earlier attempt did make it; only its answer was lost.
        this.touch(key, {
          name: pending.name,
          namespace,
          count: 1,
          firstTimestamp: timestamp,
          lastSeen: now.getTime(),
        });
        return 'written';
      }
      if (isPassingFailure(error)) {
        if (this.queue.failures === 0)
          this.options.logger.warn(
            { err: error, reason, object: `${meta.namespace ?? ''}/${meta.name ?? ''}` },
            'could not write an event yet; keeping it and trying again',
          );
        return 'again';
      }
      this.drop('refused', reason, object, error);
      return 'dropped';
    }
  }

  private touch(key: string, recorded: Recorded): void {
    this.recent.delete(key);
    this.recent.set(key, recorded);
    const max = this.options.maxRemembered ?? 4096;
    while (this.recent.size > max) {
      const oldest = this.recent.keys().next().value;
      if (oldest === undefined) break;
      this.recent.delete(oldest);
    }
  }
}

/** Unique per Event: the object's name and a time-and-random suffix, as client-go names them. */
function eventName(objectName: string | undefined): string {
  return `${objectName ?? 'object'}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
}
