// Status conditions the Kubernetes way: one per type, each carrying the
// generation it was computed from; lastTransitionTime moves only when the
// status (True/False/Unknown) changes, so an unchanged condition is equal
// to its old self and causes no write.
import { rfc3339 } from './time.js';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * A condition as read back from an object: the API's shape (src/api/conditions.ts has one per
 * kind), where message may be absent. Every function here takes it, so callers need no casts.
 */
export type ObservedCondition = Omit<Condition, 'message'> & { message?: string };

/** Returns `conditions` with `input` set for `generation`; other types are kept as they are. */
export function setCondition<C extends ObservedCondition>(
  conditions: readonly C[] | undefined,
  input: ConditionInput,
  generation: number | undefined,
  now: Date = new Date(),
): (C | Condition)[] {
  const list: (C | Condition)[] = [...(conditions ?? [])];
  const index = list.findIndex((condition) => condition.type === input.type);
  const previous = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration: generation,
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : rfc3339(now),
    reason: input.reason,
    message: input.message,
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

export function findCondition<C extends ObservedCondition>(
  conditions: readonly C[] | undefined,
  type: string,
): C | undefined {
  return conditions?.find((condition) => condition.type === type);
}

export function isConditionTrue(conditions: readonly ObservedCondition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
