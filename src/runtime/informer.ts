// A watched cache of one resource type: list, then watch from the list's
// resourceVersion, with the traps of client-node's own informer avoided:
// - any error (not only 410 Gone) restarts list/watch with backoff, so the
//   cache resumes by itself after the API server restarts;
// - bookmarks are requested, and a watch that hears nothing (not even a
//   bookmark) for `inactivityTimeoutMs` is dropped and resumed: a silently
//   dead connection cannot leave the cache stale;
// - the server ends each watch after a random 5-10 min, as client-go does.
// Objects go into the store without metadata.managedFields (client-go's
// TransformStripManagedFields): nothing here reads them, and they are often
// the larger part of an object that has status.
import { Watch } from '@kubernetes/client-node';
import type { Logger } from '../observability/logging.js';
import { abortableDelay } from './abort.js';
import { KeyBackoff } from './backoff.js';
import { traceNow, traces } from './trace.js';
import {
  isGone,
  isNotFound,
  resourcePath,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from './kube-client.js';

export type InformerEvent<T> =
  | { type: 'add'; object: T }
  | { type: 'update'; object: T; old: T }
  /**
   * `finalStateUnknown`: the object was missing from a relist, so `object` is the last state this
   * cache saw, not the one the API server deleted (client-go's DeletedFinalStateUnknown).
   */
  | { type: 'delete'; object: T; finalStateUnknown?: true };

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  /** No watch event or bookmark for this long: the watch is presumed dead. */
  inactivityTimeoutMs?: number;
  pageSize?: number;
}

export interface InformerStats {
  lists: number;
  watches: number;
  errors: number;
}

export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}

class WatchEnded extends Error {}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers = new Set<(event: InformerEvent<T>) => void>();
  private readonly syncWaiters: Array<() => void> = [];
  private readonly backoff = new KeyBackoff<string>({ baseMs: 200, maxMs: 30_000, jitter: 0.2 });
  private resourceVersion = '';
  private synced = false;
  readonly stats: InformerStats = { lists: 0, watches: 0, errors: 0 };

  constructor(
    private readonly client: KubeClient,
    readonly type: ResourceType,
    private readonly options: InformerOptions,
  ) {}

  on(handler: (event: InformerEvent<T>) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Lists and watches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const logger = this.options.logger.child({ resource: this.type.plural });
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce(signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof Error && error.name === 'TimeoutError') {
          logger.info('watch heard nothing, not even a bookmark, for too long; resuming it');
          continue;
        }
        if (isGone(error)) {
          logger.info('resourceVersion expired (410 Gone); relisting');
          this.resourceVersion = '';
          continue;
        }
        this.stats.errors++;
        const delayMs = this.backoff.next('watch');
        // A list answered 404 means the kind is not served at all: the usual cause is a CRD not
        // applied (or an older one after an upgrade). Say which, as an error: nothing syncs until then.
        if (isNotFound(error) && !this.resourceVersion) {
          const name = this.type.group ? `${this.type.plural}.${this.type.group}` : this.type.plural;
          logger.error(
            { retryInMs: delayMs },
            `the API server does not serve ${name}/${this.type.version} (404): apply its CustomResourceDefinition ` +
              '(crds/, or upgrade the Helm chart); the controller is not ready until it can list it',
          );
        } else logger.warn({ err: error, retryInMs: delayMs }, 'list/watch failed; retrying');
        await abortableDelay(delayMs, signal);
      }
    }
  }

  private async relist(): Promise<void> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.client.list<T>(this.type, {
        namespace: this.options.namespace,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        limit: this.options.pageSize ?? 500,
        continue: continueToken,
      });
      for (const item of page.items) fresh.set(objectKey(item), forCache(item, this.type));
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? '';
    } while (continueToken);

    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.store.delete(key);
        this.emit({ type: 'delete', object: old, finalStateUnknown: true });
      }
    }
    for (const [key, object] of fresh) this.upsert(key, object);
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private upsert(key: string, object: T): void {
    const old = this.store.get(key);
    this.store.set(key, object);
    if (!old) this.emit({ type: 'add', object });
    // A relist returns unchanged objects too; only real changes are events.
    else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion)
      this.emit({ type: 'update', object, old });
  }

  private emit(event: InformerEvent<T>): void {
    if (traces.informerEvent.hasSubscribers) {
      traces.informerEvent.publish({
        resource: this.type.plural,
        type: event.type,
        key: objectKey(event.object),
        resourceVersion: event.object.metadata?.resourceVersion,
        at: traceNow(),
      });
    }
    for (const handler of this.handlers) handler(event);
  }

  /** One watch request; resolves when the server closes it cleanly, rejects on error. */
  private watchOnce(signal: AbortSignal): Promise<void> {
    this.stats.watches++;
    const watch = new Watch(this.client.config);
    // client-node's watch timeout is an inactivity timeout since 2.0.1; with
    // bookmarks (about one a minute) it only fires on a dead connection.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = this.options.inactivityTimeoutMs ?? 150_000;
    const path = resourcePath(this.type, this.options.namespace);
    return new Promise<void>((resolve, reject) => {
      let failure: unknown;
      let abortWatch: AbortController | undefined;
      const onAbort = () => abortWatch?.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        const cause = failure ?? error;
        if (cause && !(cause instanceof WatchEnded) && !signal.aborted) reject(cause);
        else resolve();
      };
      watch
        .watch(
          path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          (phase: string, object: unknown) => {
            try {
              this.handleWatchEvent(phase, object as T);
            } catch (error) {
              failure = error;
              abortWatch?.abort();
            }
          },
          finish,
        )
        .then((controller) => {
          abortWatch = controller;
          if (signal.aborted) controller.abort();
        }, reject);
    });
  }

  private handleWatchEvent(phase: string, object: T): void {
    if (phase === 'ERROR') {
      const status = object as unknown as { code?: number; message?: string };
      if (status.code === 410) {
        this.resourceVersion = '';
        throw new WatchEnded('410 Gone');
      }
      throw new Error(`watch error: ${status.message ?? JSON.stringify(object)}`);
    }
    const resourceVersion = object.metadata?.resourceVersion;
    if (phase !== 'BOOKMARK') {
      const item = forCache(object, this.type);
      const key = objectKey(item);
      if (phase === 'DELETED') {
        this.store.delete(key);
        this.emit({ type: 'delete', object: item });
      } else {
        this.upsert(key, item);
      }
      this.backoff.forget('watch');
    }
    if (resourceVersion) this.resourceVersion = resourceVersion;
  }
}

/**
 * An object as the store keeps it: without metadata.managedFields, and with apiVersion and kind
 * (list items come without them). The object was just parsed for us alone, so it is changed in
 * place. A write of a cached object leaves managedFields as they are on the server (an absent
 * field is "unchanged" to the API server).
 */
function forCache<T extends KubeObject>(object: T, type: ResourceType): T {
  if (object.metadata && 'managedFields' in object.metadata) {
    // A copy rather than `delete`, which would leave the metadata object in V8's slower and
    // larger dictionary mode.
    const { managedFields: _, ...metadata } = object.metadata;
    object.metadata = metadata;
  }
  if (!object.apiVersion || !object.kind) {
    object.apiVersion = type.group ? `${type.group}/${type.version}` : type.version;
    object.kind = type.kind;
  }
  return object;
}
