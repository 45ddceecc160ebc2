// Finalizers, added and removed with a JSON patch that first tests what it
// was decided on: a concurrent change makes the patch fail (409) and the
// reconcile is retried on fresh data instead of overwriting someone's list.
// Adding tests the finalizer list itself (absent = null), not the
// resourceVersion: a write of something else at the same time (the status, by
// the same reconcile) does not make it fail, so the two can be sent together.
// Removing tests the resourceVersion: it is the last step of a deletion.
import { ApiError, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

export function hasFinalizer(object: KubeObject, finalizer: string): boolean {
  return object.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(object: KubeObject): boolean {
  return Boolean(object.metadata?.deletionTimestamp);
}

async function jsonPatch(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject,
  operations: unknown[],
): Promise<void> {
  try {
    await client.patch(type, object.metadata?.namespace, object.metadata?.name ?? '', operations, {
      patchType: 'json',
    });
  } catch (error) {
    // A failed "test" operation is 422 with reason Invalid; treat it as the conflict it is. The
    // API server's answer names no cause ("the server rejected our request due to an error in
    // our request"); a 422 that names one (a finalizer refused on an object being deleted) is not a conflict.
    if (
      error instanceof ApiError &&
      error.status === 422 &&
      (/test/i.test(error.message) || !hasCauses(error.details))
    ) {
      throw new ApiError(409, 'Conflict', `${object.metadata?.name} changed meanwhile: ${error.message}`);
    }
    throw error;
  }
}

function hasCauses(details: unknown): boolean {
  const causes = (details as { causes?: unknown[] } | undefined)?.causes;
  return Array.isArray(causes) && causes.length > 0;
}

export async function addFinalizer(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject,
  finalizer: string,
): Promise<boolean> {
  if (hasFinalizer(object, finalizer)) return false;
  const list = object.metadata?.finalizers;
  // The API server's JSON patch passes a test of null on an absent member (and fails it on a present one).
  const operations = list?.length
    ? [
        { op: 'test', path: '/metadata/finalizers', value: list },
        { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
      ]
    : [
        { op: 'test', path: '/metadata/finalizers', value: null },
        { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
      ];
  await jsonPatch(client, type, object, operations);
  return true;
}

export async function removeFinalizer(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject,
  finalizer: string,
): Promise<boolean> {
  const index = object.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return false;
  const test = { op: 'test', path: '/metadata/resourceVersion', value: object.metadata?.resourceVersion };
  await jsonPatch(client, type, object, [test, { op: 'remove', path: `/metadata/finalizers/${index}` }]);
  return true;
}
