// Watch sources of a controller: they only turn cache events into keys on its
// work queue. A reconciler never sees an event.
import type { Controller } from './controller.js';
import { objectKey, type Informer } from './informer.js';
import type { KubeObject } from './kube-client.js';
import { untilAborted } from './abort.js';

export type Source = (controller: Controller, signal: AbortSignal) => Promise<void>;

/** Every change of an object of the controller's own type enqueues its key. */
export function watchOwn<T extends KubeObject>(informer: Informer<T>): Source {
  return watchMapped(informer, (object) => [objectKey(object)]);
}

export interface WatchMappedOptions {
  /**
   * Enqueue the keys this long after the change instead of at once: the changes of that time
   * are reconciled together (the queue holds a key once). For summaries of many objects, such as
   * a pool's counts of its VMs, which would otherwise be written once per object changed.
   */
  delayMs?: number;
}

/** Changes of related objects (owned, referenced) enqueue the keys `map` returns. */
export function watchMapped<T extends KubeObject>(
  informer: Informer<T>,
  map: (object: T) => string[],
  options: WatchMappedOptions = {},
): Source {
  const delayMs = options.delayMs ?? 0;
  return async (controller, signal) => {
    const enqueue =
      delayMs > 0 ? (key: string) => controller.enqueueAfter(key, delayMs) : (key: string) => controller.enqueue(key);
    const off = informer.on((event) => {
      for (const key of map(event.object)) enqueue(key);
      if (event.type === 'update') for (const key of map(event.old)) enqueue(key);
    });
    // Objects already in the cache when the controller starts are reconciled too.
    for (const object of informer.list()) for (const key of map(object)) controller.enqueue(key);
    await untilAborted(signal);
    off();
  };
}

/**
 * Requeues every cached object now and then: the safety net for anything the
 * watches missed. It reads the cache only; reconciles that change nothing
 * write nothing.
 */
export function periodicResync<T extends KubeObject>(informer: Informer<T>, periodMs: number): Source {
  return async (controller, signal) => {
    const timer = setInterval(() => {
      for (const object of informer.list()) controller.enqueue(objectKey(object));
    }, periodMs);
    timer.unref();
    await untilAborted(signal);
    clearInterval(timer);
  };
}
