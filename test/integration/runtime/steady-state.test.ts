// A reconciler built from the runtime's helpers (finalizer, conditions,
// status patch, events) on a custom resource with a status subresource:
// once an object has settled, reconciling it again and again writes nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { Cache } from '../../../src/runtime/cache.js';
import { setCondition, type Condition } from '../../../src/runtime/conditions.js';
import { Controller } from '../../../src/runtime/controller.js';
import { EventRecorder } from '../../../src/runtime/events.js';
import { addFinalizer, isBeingDeleted, removeFinalizer } from '../../../src/runtime/finalizers.js';
import { isNotFound, type KubeObject, type ResourceType } from '../../../src/runtime/kube-client.js';
import type { ReconcileContext } from '../../../src/runtime/reconciler.js';
import { periodicResync, watchOwn } from '../../../src/runtime/sources.js';
import { patchStatusIfChanged } from '../../../src/runtime/status.js';
import { captureLogs } from '../../harness/logs.js';
import { client, freshNamespace, Signal } from './fixtures.js';

const VM: ResourceType = {
  kind: 'VirtualMachine',
  group: 'virtfleet.io',
  version: 'v1alpha1',
  plural: 'virtualmachines',
  namespaced: true,
};
const FINALIZER = 'virtfleet.io/test-cleanup';

interface Resource extends KubeObject {
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[]; observedGeneration?: number };
}

const kube = client();
const logs = captureLogs();
const stop = new AbortController();
const reconciled = new Signal();
let reconciles = 0;
let running: Promise<unknown>;
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(kube, 'steady');
  const cache = new Cache(kube, logs.logger);
  const informer = cache.informerFor<Resource>(VM, { namespace });
  const events = new EventRecorder(kube, { component: 'virtfleet-test', logger: logs.logger });

  // The kubebuilder order: get, finalizer, deletion path, status.
  const reconcile = async ({ key }: ReconcileContext) => {
    reconciles++;
    try {
      const object = informer.get(key);
      if (!object) return;
      if (isBeingDeleted(object)) {
        await removeFinalizer(kube, VM, object, FINALIZER);
        return;
      }
      if (await addFinalizer(kube, VM, object, FINALIZER)) return; // the update event brings us back
      const generation = object.metadata?.generation;
      const conditions = setCondition(
        object.status?.conditions,
        { type: 'Ready', status: 'True', reason: 'Settled', message: 'nothing to do' },
        generation,
      );
      if (await patchStatusIfChanged(kube, VM, object, { conditions, observedGeneration: generation })) {
        await events.record(object, 'Normal', 'Settled', 'the object settled');
      }
    } finally {
      reconciled.poke();
    }
  };
  const controller = new Controller({
    name: 'steady',
    reconciler: { reconcile },
    logger: logs.logger,
    sources: [watchOwn(informer), periodicResync(informer, 200)],
  });
  running = Promise.all([cache.run(stop.signal), cache.waitForSync().then(() => controller.run(stop.signal))]);
});

afterAll(async () => {
  stop.abort();
  await running;
});

async function read(name: string): Promise<Resource> {
  return kube.get<Resource>(VM, namespace, name);
}

describe('a steady object', () => {
  it('gets its finalizer, condition and event once, then causes no API writes however often it is reconciled', async () => {
    await kube.create<Resource>(VM, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'steady', namespace },
      spec: { hostPoolRef: { name: 'lab' }, memory: '128Mi' },
    });
    let settled: Resource | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await delay(100)) {
      const current = await read('steady');
      if (current.status?.conditions?.[0]?.status === 'True') {
        settled = current;
        break;
      }
    }
    expect(settled?.metadata?.finalizers).toEqual([FINALIZER]);
    expect(settled?.status?.observedGeneration).toBe(settled?.metadata?.generation);

    // Idle: the periodic resync reconciles it about every 200 ms.
    const writesBefore = kube.counts.writes;
    const reconcilesBefore = reconciles;
    await reconciled.until(() => reconciles >= reconcilesBefore + 15, 30_000, '15 more reconciles');
    expect(kube.counts.writes - writesBefore).toBe(0);

    const after = await read('steady');
    expect(after.metadata?.resourceVersion).toBe(settled?.metadata?.resourceVersion);
    expect(after.status?.conditions?.[0]?.lastTransitionTime).toBe(
      settled?.status?.conditions?.[0]?.lastTransitionTime,
    );
  }, 90_000);

  it('removes its finalizer when deleted, so the object goes away', async () => {
    await kube.delete(VM, namespace, 'steady');
    for (const deadline = Date.now() + 30_000; ; await delay(100)) {
      const gone = await read('steady').then(
        () => false,
        (error: unknown) => isNotFound(error),
      );
      if (gone) break;
      if (Date.now() > deadline) throw new Error('the object was not deleted');
    }
    const eventsList = await kube.list<KubeObject & { reason?: string; count?: number }>(
      { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
      { namespace },
    );
    expect(eventsList.items.filter((event) => event.reason === 'Settled').map((event) => event.count)).toEqual([1]);
  }, 60_000);
});
