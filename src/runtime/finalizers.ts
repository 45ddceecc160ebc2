// Finalizers, added and removed with a JSON patch that first tests what it
// was decided on: a concurrent change makes the patch fail (409) and the
// reconcile is retried on fresh data instead of overwriting someone's list.
// Adding tests the finalizer list itself (absent = null), not the
// resourceVersion: a write of something else at the same time (the status, by
// the same reconcile) does not make it fail, so the two can be sent together.
// Removing tests the resourceVersion: it is the last step of a deletion.
//
// A failed test when adding is most often our own earlier add that the cache does not show yet:
// a reconcile sends the finalizer with its first status write, and the next reconcile, woken by
// the status write's watch event, may still read the object without it (on a fresh `make run`,
// every VM's second reconcile did, and its log began with the API server's 422). Adding then
// reads the object as it is now and is done if the finalizer is there.
import { ApiError, isConflict, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

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

/** The JSON patch that adds `finalizer` to the list as read (`list`), testing that list first. */
function addOperations(list: string[] | undefined, finalizer: string): unknown[] {
  // The API server's JSON patch passes a test of null on an absent member (and fails it on a present one).
  return list?.length
    ? [
        { op: 'test', path: '/metadata/finalizers', value: list },
        { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
      ]
    : [
        { op: 'test', path: '/metadata/finalizers', value: null },
        { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
      ];
}

/**
 * Adds `finalizer` unless `object` (as read, from a cache maybe) has it; true when this call
 * added it. When the list changed since `object` was read, the object is read again from the API
 * server: the finalizer already there (our own earlier add) is no conflict; otherwise it is added
 * to the list as it now is, once; a second change meanwhile is the 409 Conflict it is.
 */
export async function addFinalizer(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject,
  finalizer: string,
): Promise<boolean> {
  if (hasFinalizer(object, finalizer)) return false;
  try {
    await jsonPatch(client, type, object, addOperations(object.metadata?.finalizers, finalizer));
    return true;
  } catch (error) {
    if (!isConflict(error)) throw error;
    const current = await client.get(type, object.metadata?.namespace, object.metadata?.name ?? '');
    // Another object of the same name (deleted and made again): not ours to decide on.
    if (current.metadata?.uid !== object.metadata?.uid) throw error;
    if (hasFinalizer(current, finalizer)) return false;
    await jsonPatch(client, type, current, addOperations(current.metadata?.finalizers, finalizer));
    return true;
  }
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
