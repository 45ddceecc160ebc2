// How the VirtualMachine controller is wired: which events make which VMs be looked at again.
// Sources only enqueue keys; they never act (DESIGN.md, "Data flows one way").
import { Controller } from '../../runtime/controller.js';
import { untilAborted } from '../../runtime/abort.js';
import { objectKey, type Informer } from '../../runtime/informer.js';
import { watchOwn, type Source } from '../../runtime/sources.js';
import type { Allocations } from '../allocations.js';
import type { VmObject } from '../resources.js';
import { DiskProvisioner } from '../vm-storage.js';
import type { ImageLookup } from '../image/disks.js';
import type { VirtualMachineControllerOptions } from './options.js';
import { VirtualMachineReconciler } from './reconciler.js';

/** Keys of VMs of `pool` that wait for a host (neither status.host nor a placement here). */
function unscheduledOf(vms: Informer<VmObject>, allocations: Allocations, pool: string): string[] {
  return vms
    .list()
    .filter(
      (vm) => vm.spec.hostPoolRef.name === pool && !vm.status?.host && !allocations.pendingFor(vm.metadata.uid ?? ''),
    )
    .map(objectKey);
}

/**
 * Where capacity or readiness may have changed: a pool changed (spec or status), a VM went away
 * (its capacity is free), or the HostPool controller changed a host's readiness. The VMs that
 * wait for a host, and those on a changed host, are reconciled again.
 */
function capacitySources(options: VirtualMachineControllerOptions): Source {
  const { vms, pools, fleet, allocations } = options;
  return async (controller, signal) => {
    const enqueueWaiting = (pool: string) => {
      for (const key of unscheduledOf(vms, allocations, pool)) controller.enqueue(key);
    };
    // A pool's status changed: maybe a failed host was fenced. Its VMs are enqueued with their
    // spec.recovery.priority as the work queue's priority: the highest are reconciled first (also
    // before VMs already waiting with a lower one), so that they take the free capacity first.
    const enqueueFailedHosts = (pool: string) => {
      // Fenced hosts' VMs move by restart, maintenance hosts' by live migration.
      const failed = new Set(
        fleet
          .hosts(pool)
          .filter((host) => host.verdict.fencing?.state === 'Fenced' || host.maintenance)
          .map((host) => host.name),
      );
      if (failed.size === 0) return;
      const stranded = vms
        .list()
        .filter((vm) => vm.spec.hostPoolRef.name === pool && failed.has(allocations.hostOf(vm) ?? ''));
      stranded.sort((a, b) => b.spec.recovery.priority - a.spec.recovery.priority);
      for (const vm of stranded) controller.enqueue(objectKey(vm), { priority: vm.spec.recovery.priority });
    };
    const offPools = pools.on((event) => {
      const pool = event.object.metadata.name ?? '';
      enqueueWaiting(pool);
      enqueueFailedHosts(pool);
    });
    const offVms = vms.on((event) => {
      if (event.type === 'delete') enqueueWaiting(event.object.spec.hostPoolRef.name);
    });
    const offFleet = fleet.onReadinessChange((pool, hosts) => {
      enqueueWaiting(pool);
      const changed = new Set(hosts);
      for (const vm of vms.list()) {
        const host = allocations.hostOf(vm);
        const migration = vm.status?.migration;
        const involved =
          (host && changed.has(host)) ||
          (migration && (changed.has(migration.source) || changed.has(migration.target))) ||
          // A refused start by lease waits for the old host: back, its copy is adopted there.
          vm.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'RecoveryBlocked');
        // A failed (or fenced) host's VMs by spec.recovery.priority, as above.
        if (vm.spec.hostPoolRef.name === pool && involved)
          controller.enqueue(objectKey(vm), { priority: vm.spec.recovery.priority });
      }
    });
    await untilAborted(signal);
    offPools();
    offVms();
    offFleet();
  };
}

/** Domain events name the domain's UUID, which is the VM's UID. */
function domainEventSource(options: VirtualMachineControllerOptions): Source {
  const { vms, fleet } = options;
  return async (controller, signal) => {
    const keyByUid = new Map<string, string>();
    for (const vm of vms.list()) keyByUid.set(vm.metadata.uid ?? '', objectKey(vm));
    const offVms = vms.on((event) => {
      const uid = event.object.metadata.uid ?? '';
      if (event.type === 'delete') keyByUid.delete(uid);
      else keyByUid.set(uid, objectKey(event.object));
    });
    const enqueue = (uid: string) => {
      const key = keyByUid.get(uid);
      if (key) controller.enqueue(key);
    };
    const offFleet = fleet.onDomainEvent(enqueue);
    const offCopies = fleet.onStrayCopy(enqueue);
    await untilAborted(signal);
    offVms();
    offFleet();
    offCopies();
  };
}

/**
 * DELETED events, handed to the deletion step, which keeps those of VMs deleted under our
 * finalizer (deletion.ts, finalizeVanished); watchOwn enqueues their keys.
 */
function deletedSource(options: VirtualMachineControllerOptions, reconciler: VirtualMachineReconciler): Source {
  return async (_controller, signal) => {
    const off = options.vms.on((event) => {
      if (event.type === 'delete') reconciler.deletion.noteDeleted(event.object, event.finalStateUnknown === true);
    });
    await untilAborted(signal);
    off();
  };
}

/**
 * Work this controller runs in the background for a VM (an image download or upload, a
 * migration, a health probe loop) asks for the VM to be looked at again: it is reconciled at once
 * instead of at its next look.
 */
function wakeSource(options: VirtualMachineControllerOptions, wakeListeners: Set<(uid: string) => void>): Source {
  return async (controller, signal) => {
    const listener = (uid: string) => {
      const vm = options.vms.list().find((candidate) => candidate.metadata.uid === uid);
      if (vm) controller.enqueue(objectKey(vm));
    };
    wakeListeners.add(listener);
    await untilAborted(signal);
    wakeListeners.delete(listener);
  };
}

export function virtualMachineController(
  options: VirtualMachineControllerOptions & {
    concurrency?: number;
    imageProgressIntervalMs?: number;
    /** VirtualMachineImages by namespace and name, for disks with source.image.name. */
    imageLookup?: ImageLookup;
  },
): Controller {
  const wakeListeners = new Set<(uid: string) => void>();
  const wake = (uid: string) => {
    for (const listener of wakeListeners) listener(uid);
  };
  const disks =
    options.disks ??
    new DiskProvisioner({
      ...(options.imageProgressIntervalMs ? { progressIntervalMs: options.imageProgressIntervalMs } : {}),
      ...(options.hostRetryMs ? { retryMs: options.hostRetryMs } : {}),
      onJobEnd: wake,
      ...(options.imageLookup ? { images: options.imageLookup } : {}),
    });
  const reconciler = new VirtualMachineReconciler({ ...options, disks, wake });
  return new Controller({
    name: 'virtualmachine',
    reconciler,
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    concurrency: options.concurrency ?? 16,
    sources: [
      watchOwn(options.vms),
      deletedSource(options, reconciler),
      capacitySources(options),
      domainEventSource(options),
      wakeSource(options, wakeListeners),
      ...reconciler.installs.source(options.profiles),
    ],
  });
}
