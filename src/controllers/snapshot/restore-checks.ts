// Step (restore): may this VM be reverted to its entry of the snapshot now? The same VM (UID),
// not migrating, on the host that holds its snapshot, that host ready and still holding it.
// Each refusal names the VM and what to do.
import type { SnapshotVmEntry } from '../../api/virtualmachinesnapshot.js';
import type { Fleet } from '../../hosts/fleet.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import { findCondition } from '../../runtime/conditions.js';
import { VM_CONDITIONS } from '../reasons.js';
import type { VmObject } from '../resources.js';
import type { Refusal } from './members.js';
import { SNAPSHOT_REASONS as R } from './types.js';

export interface RevertTarget {
  entry: SnapshotVmEntry;
  vm: VmObject;
  hypervisor: Hypervisor;
}

/** Why the VM cannot be reverted now (pure: from the VM and its host as this process sees them). */
export function restoreRefusal(entry: SnapshotVmEntry, vm: VmObject | undefined, fleet: Fleet): Refusal | undefined {
  if (!vm)
    return {
      reason: R.VmNotFound,
      message: `VirtualMachine ${entry.vm} no longer exists: its disks, and the snapshot in them, went with it`,
    };
  if (vm.metadata.uid !== entry.uid)
    return {
      reason: R.VmReplaced,
      message: `VirtualMachine ${entry.vm} was deleted and made again since the snapshot: its disks are new and hold no snapshot`,
    };
  const status = vm.status ?? {};
  const migrating = findCondition(status.conditions, VM_CONDITIONS.Migrating);
  if (status.migration || migrating?.status === 'True') {
    const where = status.migration ? ` from ${status.migration.source} to ${status.migration.target}` : '';
    return {
      reason: R.VmMigrating,
      message: `VirtualMachine ${entry.vm} is live-migrating${where}: wait until its migration ends, then restore again`,
    };
  }
  if (status.host !== entry.host)
    return {
      reason: R.VmMoved,
      message:
        `VirtualMachine ${entry.vm} is on host ${status.host ?? '(none)'}, but its snapshot is in its disks on host ${entry.host}: ` +
        `migrate it back to ${entry.host} (virtfleet vm migrate), then restore again`,
    };
  const host = fleet.host(entry.pool, entry.host);
  if (!host?.verdict.readiness.ready)
    return {
      reason: R.HostNotReady,
      message: `host ${entry.host} of VirtualMachine ${entry.vm} is not ready (${host?.verdict.readiness.reason ?? 'not connected'}): bring it back, then restore again`,
    };
  return undefined;
}

/** The refusal, or the VM and its host's hypervisor once the host confirms it holds the snapshot. */
export async function revertTarget(
  entry: SnapshotVmEntry,
  vm: VmObject | undefined,
  fleet: Fleet,
): Promise<RevertTarget | Refusal> {
  const refusal = restoreRefusal(entry, vm, fleet);
  if (refusal) return refusal;
  const hypervisor = fleet.hypervisor(fleet.host(entry.pool, entry.host)!.uri);
  try {
    if (await hypervisor.snapshot(entry.uid, entry.snapshotName)) return { entry, vm: vm!, hypervisor };
  } catch (error) {
    return {
      reason: R.HostNotReady,
      message: `host ${entry.host} did not answer for VirtualMachine ${entry.vm}: ${(error as Error).message}; restore again once it answers`,
    };
  }
  return {
    reason: R.HostSnapshotMissing,
    message: `host ${entry.host} no longer has snapshot ${entry.snapshotName} of VirtualMachine ${entry.vm}: restore from another snapshot`,
  };
}
