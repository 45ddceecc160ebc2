// What a VirtualMachineSnapshotSchedule does now, from its snapshots and the clock: the snapshot
// to make (named after its slot, so a retry or a second controller process makes the same one),
// those to prune, when to look again, and Ready. Pure; schedule.ts acts on it.
import { findCondition } from '../../runtime/conditions.js';
import { READY, type ScheduleObject, type SnapshotObject } from './types.js';

export interface SchedulePlan {
  /** The snapshot to make now (its name), when one is due and none is being made. */
  create?: string;
  /** Snapshots to delete: Ready ones beyond `keep`, and Failed ones older than a Ready one. */
  prune: SnapshotObject[];
  /** The next slot's start (ms since the epoch); undefined while suspended. */
  nextAt?: number;
  /** The newest snapshot of the schedule (the one about to be made counts once made). */
  newest?: SnapshotObject;
  /** Ready snapshots left after pruning. */
  ready: number;
  /** Ready from the newest settled snapshot: its Ready reason and message when it failed. */
  readyCondition: { status: 'True' | 'False'; reason: string; message: string };
}

/** The longest schedule name kept whole in its snapshots' names (a snapshot name has at most 253). */
const NAME_PREFIX_MAX = 240;

/** The name of the snapshot of the slot starting at `slotMs`. */
export function slotSnapshotName(schedule: string, slotMs: number): string {
  return `${schedule.slice(0, NAME_PREFIX_MAX)}-${Math.floor(slotMs / 1000)}`;
}

const created = (s: SnapshotObject) => new Date(s.metadata.creationTimestamp ?? 0).getTime() || 0;
const phase = (s: SnapshotObject) => s.status?.phase ?? 'Pending';
const settled = (s: SnapshotObject) => phase(s) === 'Ready' || phase(s) === 'Failed';

/** Oldest first; within one second (creationTimestamp's grain), by name (slot names grow). */
function byAge(a: SnapshotObject, b: SnapshotObject): number {
  return created(a) - created(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}

export function planSchedule(schedule: ScheduleObject, owned: readonly SnapshotObject[], nowMs: number): SchedulePlan {
  const live = owned.filter((s) => !s.metadata.deletionTimestamp).sort(byAge);
  const intervalMs = schedule.spec.intervalSeconds * 1000;
  const slot = Math.floor(nowMs / intervalMs) * intervalMs;
  const slotName = slotSnapshotName(schedule.metadata.name ?? '', slot);
  const suspended = schedule.spec.suspend === true;
  const making = live.some((s) => !settled(s));
  const create = !suspended && !making && !live.some((s) => s.metadata.name === slotName) ? slotName : undefined;

  const ready = live.filter((s) => phase(s) === 'Ready');
  const keep = ready.slice(-schedule.spec.keep);
  const newestReady = keep.at(-1);
  const prune = [
    ...ready.slice(0, Math.max(0, ready.length - schedule.spec.keep)),
    ...live.filter((s) => phase(s) === 'Failed' && newestReady !== undefined && byAge(s, newestReady) < 0),
  ].sort(byAge);

  const newestSettled = live.filter(settled).at(-1);
  let readyCondition: SchedulePlan['readyCondition'];
  if (!newestSettled)
    readyCondition = {
      status: 'False',
      reason: 'InProgress',
      message: suspended ? 'suspended before its first snapshot' : 'the first snapshot is being made',
    };
  else if (phase(newestSettled) === 'Ready')
    readyCondition = {
      status: 'True',
      reason: 'Succeeded',
      message: `snapshot ${newestSettled.metadata.name ?? ''} is ready; ${keep.length} of ${schedule.spec.keep} kept`,
    };
  else {
    const why = findCondition(newestSettled.status?.conditions, READY);
    readyCondition = {
      status: 'False',
      reason: why?.reason ?? 'Failed',
      message: `snapshot ${newestSettled.metadata.name ?? ''} failed: ${why?.message ?? 'no reason given'}; the next is tried at the next interval`,
    };
  }
  return {
    ...(create ? { create } : {}),
    prune,
    ...(suspended ? {} : { nextAt: slot + intervalMs }),
    ...(live.at(-1) ? { newest: live.at(-1)! } : {}),
    ready: keep.length,
    readyCondition,
  };
}
