// Adding a finalizer from a stale read (issue 11, point 5): the first log line of a fresh
// `make run` was the API server's 422 "the server rejected our request due to an error in our
// request" for the finalizer patch of each VM's second reconcile, which read the VM from a cache
// that did not show the finalizer its first reconcile had just added. On the real API server:
// the same stale read is no longer a conflict; a real change of the list still is handled.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { addFinalizer, removeFinalizer } from '../../../src/runtime/finalizers.js';
import { ApiError, type KubeObject } from '../../../src/runtime/kube-client.js';
import { client, CONFIGMAP, configMap, freshNamespace, type ConfigMap } from './fixtures.js';

const kube = client();
const FINALIZER = 'virtfleet.io/test';
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(kube, 'finalizers');
});

async function finalizersOf(name: string): Promise<string[]> {
  return (await kube.get<ConfigMap>(CONFIGMAP, namespace, name)).metadata?.finalizers ?? [];
}

/** Clears the list, so that the namespace can go. */
async function release(name: string): Promise<void> {
  await kube.patch(CONFIGMAP, namespace, name, { metadata: { finalizers: null } });
}

describe('addFinalizer from a read that does not show our own earlier add', () => {
  it('is done (false), not a conflict, and the finalizer is there once', async () => {
    const stale = await kube.create(CONFIGMAP, configMap(namespace, 'own-add', { v: '1' }));
    expect(await addFinalizer(kube, CONFIGMAP, stale, FINALIZER)).toBe(true);
    // The second reconcile, reading the object from a cache that lags: no finalizer yet.
    await expect(addFinalizer(kube, CONFIGMAP, stale, FINALIZER)).resolves.toBe(false);
    expect(await finalizersOf('own-add')).toEqual([FINALIZER]);
    await release('own-add');
  });

  it('adds it to the list as it now is when someone else changed the list meanwhile', async () => {
    const stale = await kube.create(CONFIGMAP, configMap(namespace, 'other-add', { v: '1' }));
    await kube.patch(CONFIGMAP, namespace, 'other-add', { metadata: { finalizers: ['example.com/other'] } });
    expect(await addFinalizer(kube, CONFIGMAP, stale, FINALIZER)).toBe(true);
    expect(await finalizersOf('other-add')).toEqual(['example.com/other', FINALIZER]);
    await release('other-add');
  });

  it('leaves another object of the same name alone: a 409 Conflict', async () => {
    const stale = await kube.create(CONFIGMAP, configMap(namespace, 'remade', { v: '1' }));
    await kube.delete(CONFIGMAP, namespace, 'remade');
    await kube.create(CONFIGMAP, {
      ...configMap(namespace, 'remade', { v: '2' }),
      metadata: { namespace, name: 'remade', finalizers: ['example.com/other'] },
    } as KubeObject);
    const outcome = await addFinalizer(kube, CONFIGMAP, stale, FINALIZER).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ApiError);
    expect((outcome as ApiError).status).toBe(409);
    expect(await finalizersOf('remade')).toEqual(['example.com/other']);
    await release('remade');
  });

  it('removing still tests the resourceVersion: a stale read is a 409 Conflict', async () => {
    const created = await kube.create(CONFIGMAP, configMap(namespace, 'remove', { v: '1' }));
    expect(await addFinalizer(kube, CONFIGMAP, created, FINALIZER)).toBe(true);
    const read = await kube.get<ConfigMap>(CONFIGMAP, namespace, 'remove');
    await kube.patch(CONFIGMAP, namespace, 'remove', { data: { v: '2' } });
    const outcome = await removeFinalizer(kube, CONFIGMAP, read, FINALIZER).catch((error: unknown) => error);
    expect((outcome as ApiError).status).toBe(409);
    await release('remove');
  });
});
