// Kubernetes Events for what the controller did, as `kubectl describe` shows
// them. A repeat of the same event for the same object within the
// aggregation window bumps its count instead of creating another Event, so
// a flapping condition cannot flood the API server.
//
// Events are written in the background by a few writers, in order, as client-go's broadcaster
// does: a burst of reconciles queues its Events instead of sending them all at once, so that
// they do not compete with the reconciles' own status writes for the API server (in the scale
// bench, 3 Events per VM were half of all requests). A full queue drops new Events (logged).
import { rfc3339 } from './time.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../observability/logging.js';
import { isNotFound, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

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
  /** Events waiting to be written; beyond this new ones are dropped. Default 4096. */
  maxQueued?: number;
}

interface Pending {
  object: KubeObject;
  type: EventType;
  reason: string;
  message: string;
  at: Date;
  done: () => void;
}

export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();
  private readonly queue: Pending[] = [];
  private writing = 0;
  private dropped = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly options: EventRecorderOptions,
  ) {}

  /**
   * Records an event. Resolves once it is written (or given up on); failures are logged, never
   * thrown: an Event is not worth failing a reconcile, and callers need not wait for it.
   */
  record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    if (this.queue.length >= (this.options.maxQueued ?? 4096)) {
      if (this.dropped++ % 100 === 0) {
        this.options.logger.warn(
          {
            dropped: this.dropped,
            reason,
            object: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
          },
          'too many Events waiting to be written; dropping new ones',
        );
      }
      return Promise.resolve();
    }
    return new Promise((done) => {
      this.queue.push({ object, type, reason, message, at: new Date(), done });
      this.drain();
    });
  }

  private drain(): void {
    while (this.writing < (this.options.writers ?? 4) && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.writing++;
      void this.write(next).finally(() => {
        this.writing--;
        next.done();
        this.drain();
      });
    }
  }

  private async write({ object, type, reason, message, at: now }: Pending): Promise<void> {
    const meta = object.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const key = [meta.uid, type, reason, message].join('\u0000');
    const timestamp = rfc3339(now);
    const windowMs = this.options.aggregateWindowMs ?? 10 * 60_000;
    try {
      const previous = this.recent.get(key);
      if (previous && now.getTime() - previous.lastSeen < windowMs) {
        previous.count++;
        previous.lastSeen = now.getTime();
        this.touch(key, previous);
        try {
          await this.client.patch(CORE_EVENT, previous.namespace, previous.name, {
            count: previous.count,
            lastTimestamp: timestamp,
          });
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error; // the Event expired: create a new one below
        }
      }
      const name = `${meta.name ?? 'object'}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
      await this.client.create(CORE_EVENT, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
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
      });
      this.touch(key, { name, namespace, count: 1, firstTimestamp: timestamp, lastSeen: now.getTime() });
    } catch (error) {
      this.options.logger.warn(
        { err: error, reason, object: `${meta.namespace ?? ''}/${meta.name ?? ''}` },
        'could not record an event',
      );
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
