// Kubernetes Events for what the controller did, as `kubectl describe` shows
// them. A repeat of the same event for the same object within the
// aggregation window bumps its count instead of creating another Event, so
// a flapping condition cannot flood the API server.
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
}

export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();

  constructor(private readonly client: KubeClient, private readonly options: EventRecorderOptions) {}

  /** Records an event; failures are logged, never thrown: an Event is not worth failing a reconcile. */
  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const meta = object.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const key = [meta.uid, type, reason, message].join('\u0000');
    const now = new Date();
    const timestamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const windowMs = this.options.aggregateWindowMs ?? 10 * 60_000;
    try {
      const previous = this.recent.get(key);
      if (previous && now.getTime() - previous.lastSeen < windowMs) {
        previous.count++;
        previous.lastSeen = now.getTime();
        this.touch(key, previous);
        try {
          await this.client.patch(CORE_EVENT, previous.namespace, previous.name, { count: previous.count, lastTimestamp: timestamp });
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
      this.options.logger.warn({ err: error, reason, object: `${meta.namespace ?? ''}/${meta.name ?? ''}` }, 'could not record an event');
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
