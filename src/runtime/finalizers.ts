// Finalizers, added and removed with a JSON patch that first tests the
// resourceVersion: a concurrent change makes the patch fail (409/422) and the
// reconcile is retried on fresh data instead of overwriting someone's list.
import { ApiError, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

export function hasFinalizer(object: KubeObject, finalizer: string): boolean {
  return object.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(object: KubeObject): boolean {
  return Boolean(object.metadata?.deletionTimestamp);
}

async function jsonPatch(client: KubeClient, type: ResourceType, object: KubeObject, operations: unknown[]): Promise<void> {
  const test = { op: 'test', path: '/metadata/resourceVersion', value: object.metadata?.resourceVersion };
  try {
    await client.patch(type, object.metadata?.namespace, object.metadata?.name ?? '', [test, ...operations], { patchType: 'json' });
  } catch (error) {
    // A failed "test" operation is 422 with reason Invalid; treat it as the conflict it is.
    if (error instanceof ApiError && error.status === 422 && /test/i.test(error.message)) {
      throw new ApiError(409, 'Conflict', `${object.metadata?.name} changed meanwhile: ${error.message}`);
    }
    throw error;
  }
}

export async function addFinalizer(client: KubeClient, type: ResourceType, object: KubeObject, finalizer: string): Promise<boolean> {
  if (hasFinalizer(object, finalizer)) return false;
  const operation = object.metadata?.finalizers
    ? { op: 'add', path: '/metadata/finalizers/-', value: finalizer }
    : { op: 'add', path: '/metadata/finalizers', value: [finalizer] };
  await jsonPatch(client, type, object, [operation]);
  return true;
}

export async function removeFinalizer(client: KubeClient, type: ResourceType, object: KubeObject, finalizer: string): Promise<boolean> {
  const index = object.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return false;
  await jsonPatch(client, type, object, [{ op: 'remove', path: `/metadata/finalizers/${index}` }]);
  return true;
}
