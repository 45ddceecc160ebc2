// The VirtualMachineSnapshotSchedule controller (key: namespace/name): rolling checkpoints.
//
//   get → its snapshots (ownerReference to this schedule's UID) → planSchedule (schedule-plan.ts)
//   → make the slot's snapshot (409: made already, by a retry or an earlier process) → delete the
//   pruned ones (their finalizer deletes the host data) → status → look again at the next slot.
//
// A snapshot made by a schedule is an ordinary VirtualMachineSnapshot, reconciled by the snapshot
// controller; the schedule is woken when one of its snapshots changes (wiring.ts).
import { isConflict, isNotFound, type KubeClient } from '../../runtime/kube-client.js';
import { findCondition, setCondition } from '../../runtime/conditions.js';
import type { EventRecorder, EventType } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/reconciler.js';
import { rfc3339 } from '../../runtime/time.js';
import type { VirtualMachineSnapshotScheduleStatus } from '../../api/virtualmachinesnapshotschedule.js';
import { withKstatusConditions } from '../kstatus.js';
import { StatusWriter } from './reconciler.js';
import { planSchedule } from './schedule-plan.js';
import {
  READY,
  SCHEDULE_LABEL,
  SNAPSHOT_EVENTS as E,
  VM_SNAPSHOT,
  VM_SNAPSHOT_SCHEDULE,
  type ScheduleObject,
  type SnapshotObject,
} from './types.js';

export interface ScheduleControllerOptions {
  client: KubeClient;
  schedules: Informer<ScheduleObject>;
  snapshots: Informer<SnapshotObject>;
  events?: EventRecorder;
  now?: () => number;
}

type ScheduleStatusRecord = VirtualMachineSnapshotScheduleStatus & Record<string, unknown>;

/** The snapshots a schedule owns: by its UID, not its name (a schedule made again is a new one). */
export function ownedSnapshots(snapshots: Informer<SnapshotObject>, schedule: ScheduleObject): SnapshotObject[] {
  const uid = schedule.metadata.uid;
  return snapshots
    .list()
    .filter(
      (s) =>
        s.metadata.namespace === schedule.metadata.namespace &&
        (s.metadata.ownerReferences ?? []).some((ref) => ref.uid === uid && ref.kind === VM_SNAPSHOT_SCHEDULE.kind),
    );
}

export class ScheduleReconciler implements Reconciler {
  /** By schedule key: the snapshot this process made last, and those it deleted, which a lagging cache may not show yet. */
  private readonly made = new Map<string, SnapshotObject>();
  private readonly pruned = new Set<string>();

  constructor(private readonly options: ScheduleControllerOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  async reconcile({ key, logger }: ReconcileContext): Promise<ReconcileResult | void> {
    const schedule = this.options.schedules.get(key);
    if (!schedule || schedule.metadata.deletionTimestamp) {
      this.made.delete(key);
      return; // its snapshots go with it (ownerReferences: the garbage collector)
    }
    const uid = schedule.metadata.uid ?? '';
    const namespace = schedule.metadata.namespace ?? '';
    const now = this.now();
    const cached = ownedSnapshots(this.options.snapshots, schedule);
    let mine = this.made.get(key);
    // Once the cache shows it (or it is another schedule's of that name), it is no longer needed here.
    if (
      mine &&
      (cached.some((s) => s.metadata.name === mine!.metadata.name) ||
        !mine.metadata.ownerReferences?.some((ref) => ref.uid === uid))
    ) {
      this.made.delete(key);
      mine = undefined;
    }
    const owned = (mine ? [...cached, mine] : cached).filter(
      (s) => !this.pruned.has(`${namespace}/${s.metadata.name ?? ''}`),
    );
    const plan = planSchedule(schedule, owned, now);
    let newest = plan.newest;

    if (plan.create) {
      const manifest: SnapshotObject = {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'VirtualMachineSnapshot',
        metadata: {
          name: plan.create,
          namespace,
          labels: { [SCHEDULE_LABEL]: schedule.metadata.name ?? '' },
          ownerReferences: [
            {
              apiVersion: 'virtfleet.io/v1alpha1',
              kind: VM_SNAPSHOT_SCHEDULE.kind,
              name: schedule.metadata.name ?? '',
              uid,
              controller: true,
            },
          ],
        },
        spec: { source: schedule.spec.source, memory: schedule.spec.memory ?? false },
      };
      try {
        newest = await this.options.client.create(VM_SNAPSHOT, manifest);
        this.event(schedule, 'Normal', E.ScheduledSnapshotMade, `made VirtualMachineSnapshot ${plan.create}`);
        logger.info({ snapshot: plan.create }, 'scheduled snapshot made');
      } catch (error) {
        if (!isConflict(error)) throw error;
        newest = { ...manifest, metadata: { ...manifest.metadata, creationTimestamp: new Date(now) } };
      }
      this.made.set(key, newest);
    }

    for (const snapshot of plan.prune) {
      const name = snapshot.metadata.name ?? '';
      try {
        await this.options.client.delete(VM_SNAPSHOT, namespace, name);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      this.pruned.add(`${namespace}/${name}`);
      const why =
        snapshot.status?.phase === 'Failed'
          ? 'failed, and a newer one is ready'
          : `older than the newest ${schedule.spec.keep} ready`;
      this.event(schedule, 'Normal', E.ScheduledSnapshotPruned, `deleted VirtualMachineSnapshot ${name} (${why})`);
    }
    // Forget pruned names the cache no longer shows: they are gone.
    for (const entry of this.pruned)
      if (entry.startsWith(`${namespace}/`) && !cached.some((s) => `${namespace}/${s.metadata.name ?? ''}` === entry))
        this.pruned.delete(entry);

    const writer = new StatusWriter<ScheduleStatusRecord>(this.options.client, schedule, VM_SNAPSHOT_SCHEDULE);
    const previousReady = findCondition(schedule.status?.conditions, READY);
    const ready = plan.readyCondition;
    if (ready.status === 'False' && ready.reason !== 'InProgress' && previousReady?.message !== ready.message)
      this.event(schedule, 'Warning', E.ScheduledSnapshotFailed, ready.message);
    const date = new Date(now);
    let conditions = setCondition(
      schedule.status?.conditions,
      { type: READY, ...ready },
      schedule.metadata.generation,
      date,
    );
    conditions = withKstatusConditions(
      conditions,
      // A failing schedule needs a person (its source, its hosts): Stalled, Degraded in Argo CD.
      ready.status === 'True'
        ? { kind: 'done' }
        : ready.reason === 'InProgress'
          ? { kind: 'reconciling', reason: ready.reason, message: `${READY}: ${ready.message}` }
          : { kind: 'stalled', reason: ready.reason, message: `${READY}: ${ready.message}` },
      schedule.metadata.generation,
      date,
    );
    const status: VirtualMachineSnapshotScheduleStatus = {
      readySnapshots: plan.ready,
      conditions,
      ...(schedule.metadata.generation !== undefined ? { observedGeneration: schedule.metadata.generation } : {}),
    };
    if (newest) {
      status.lastSnapshotName = newest.metadata.name ?? '';
      status.lastSnapshotTime = rfc3339(new Date(newest.metadata.creationTimestamp ?? now));
    }
    if (plan.nextAt !== undefined) status.nextSnapshotTime = rfc3339(new Date(plan.nextAt));
    await writer.write(status);
    if (plan.nextAt !== undefined) return { requeueAfterMs: Math.max(1, plan.nextAt - this.now()) };
  }

  private event(schedule: ScheduleObject, type: EventType, reason: string, message: string): void {
    void this.options.events?.record(schedule, type, reason, message);
  }
}
