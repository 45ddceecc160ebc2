// Writing status: only on the status subresource, only when it changed, as a
// JSON merge patch (client-node's default strategic merge patch does not
// exist for custom resources). Spec is the user's and is never written here.
import { isDeepStrictEqual } from 'node:util';
import type { KubeClient, KubeObject, ResourceType } from './kube-client.js';

/** A merge patch from `before` to `after`: keys gone from `after` become null. */
export function mergePatch(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown>,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(before ?? {})) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const old = before?.[key];
    if (isDeepStrictEqual(old, value)) continue;
    const bothObjects = isPlainObject(old) && isPlainObject(value);
    patch[key] = bothObjects ? mergePatch(old, value) : value;
  }
  return patch;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Drops undefined values, which JSON would drop anyway, so comparisons see what the server stores. */
export function normalize<T>(value: T): T {
  return JSON.parse(JSON.stringify(value ?? null)) as T;
}

/**
 * Patches `object`'s status to `status` if it differs from what the object
 * has; returns whether it wrote. Callers compute status from the cached
 * object, so a steady object causes no API request at all.
 */
export async function patchStatusIfChanged<S extends Record<string, unknown>>(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject & { status?: S },
  status: S,
): Promise<boolean> {
  const before = normalize(object.status ?? {}) as Record<string, unknown>;
  const after = normalize(status) as Record<string, unknown>;
  if (isDeepStrictEqual(before, after)) return false;
  await client.patch(
    type,
    object.metadata?.namespace,
    object.metadata?.name ?? '',
    { status: mergePatch(before, after) },
    { subresource: 'status' },
  );
  return true;
}
