// The snapshot, restore and snapshot-schedule controllers: their informers and watches. A
// snapshot is reconciled when it changes; a restore when it or its snapshot changes (a restore
// made before its snapshot is Ready waits for it); a schedule when it or one of its snapshots
// changes, and at its next slot.
import type { Fleet } from '../../hosts/fleet.js';
import type { Logger } from '../../observability/logging.js';
import type { ControllerMetrics } from '../../observability/metrics.js';
import { Controller } from '../../runtime/controller.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import { watchMapped, watchOwn } from '../../runtime/sources.js';
import type { VmObject } from '../resources.js';
import { SnapshotReconciler } from './reconciler.js';
import { RestoreReconciler } from './restore-reconciler.js';
import { ScheduleReconciler } from './schedule.js';
import { VM_SNAPSHOT_SCHEDULE, type RestoreObject, type ScheduleObject, type SnapshotObject } from './types.js';

export interface SnapshotControllersOptions {
  client: KubeClient;
  snapshots: Informer<SnapshotObject>;
  restores: Informer<RestoreObject>;
  schedules: Informer<ScheduleObject>;
  vms: Informer<VmObject>;
  fleet: Fleet;
  logger: Logger;
  metrics?: ControllerMetrics;
  events?: EventRecorder;
  /** How soon a deletion, or a restore, waiting for a host looks again. */
  hostRetryMs?: number;
}

export function snapshotControllers(options: SnapshotControllersOptions): Controller[] {
  const common = {
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    // Different snapshots capture in parallel; one snapshot is never reconciled twice at once.
    concurrency: 4,
  };
  const snapshot = new Controller({
    name: 'virtualmachinesnapshot',
    reconciler: new SnapshotReconciler({
      client: options.client,
      snapshots: options.snapshots,
      vms: options.vms,
      fleet: options.fleet,
      ...(options.events ? { events: options.events } : {}),
      ...(options.hostRetryMs ? { hostRetryMs: options.hostRetryMs } : {}),
    }),
    sources: [watchOwn(options.snapshots)],
    ...common,
  });
  const restore = new Controller({
    name: 'virtualmachinerestore',
    reconciler: new RestoreReconciler({
      client: options.client,
      restores: options.restores,
      snapshots: options.snapshots,
      vms: options.vms,
      fleet: options.fleet,
      ...(options.events ? { events: options.events } : {}),
      ...(options.hostRetryMs ? { retryMs: options.hostRetryMs } : {}),
    }),
    sources: [
      watchOwn(options.restores),
      // The restores waiting for this snapshot (few per namespace: a scan of the cache is enough).
      watchMapped(options.snapshots, (snapshot) =>
        options.restores
          .list()
          .filter(
            (r) =>
              r.metadata.namespace === snapshot.metadata.namespace && r.spec.snapshotName === snapshot.metadata.name,
          )
          .map((r) => `${r.metadata.namespace ?? ''}/${r.metadata.name ?? ''}`),
      ),
    ],
    ...common,
  });
  const schedule = new Controller({
    name: 'virtualmachinesnapshotschedule',
    reconciler: new ScheduleReconciler({
      client: options.client,
      schedules: options.schedules,
      snapshots: options.snapshots,
      ...(options.events ? { events: options.events } : {}),
    }),
    sources: [
      watchOwn(options.schedules),
      // A schedule's snapshot settled or went: the next may be made, older ones pruned.
      watchMapped(options.snapshots, (snapshot) =>
        (snapshot.metadata.ownerReferences ?? [])
          .filter((ref) => ref.kind === VM_SNAPSHOT_SCHEDULE.kind)
          .map((ref) => `${snapshot.metadata.namespace ?? ''}/${ref.name}`),
      ),
    ],
    ...common,
  });
  return [snapshot, restore, schedule];
}
