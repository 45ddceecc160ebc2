// Step (restore): revert one VM on its host, and what it should do afterwards.
//
// libvirt's revert itself stops the running guest and replaces its state, so the VM is never
// seen running half-reverted. A snapshot with memory is reverted paused (every VM of a group is
// resumed together once all are reverted: the restored cut stays consistent); a disk-only one is
// reverted, its captured RAM (see capture.ts) dropped by stopping the domain, then booted.
// Afterwards the VM does what its runStrategy and holds say: Halted or a stop or suspend hold
// keeps it stopped, a pause hold keeps it paused, Always and RerunOnFailure run it, Manual runs
// it when it was running in the snapshot.
import type { SnapshotVmEntry } from '../../api/virtualmachinesnapshot.js';
import { ignoring } from '../../hypervisors/hypervisor.js';
import { heldBy } from '../vm-actions.js';
import type { VmObject } from '../resources.js';
import type { RevertTarget } from './restore-checks.js';

export type AfterRevert = 'run' | 'paused' | 'stopped';

/** What the VM should be after the revert (pure). */
export function afterRevert(vm: VmObject, entry: SnapshotVmEntry): AfterRevert {
  const hold = heldBy(vm.metadata.annotations);
  if (hold === 'stop' || hold === 'suspend') return 'stopped';
  if (hold === 'pause') return entry.consistency === 'Stopped' ? 'stopped' : 'paused';
  switch (vm.spec.runStrategy) {
    case 'Halted':
      return 'stopped';
    case 'Manual':
      return entry.consistency === 'Stopped' ? 'stopped' : 'run';
    default:
      return 'run';
  }
}

/**
 * Reverts the VM. A memory snapshot that should run is left paused: resumeReverted starts it
 * with the rest of its group.
 */
export async function revertVm({ entry, vm, hypervisor }: RevertTarget): Promise<void> {
  const uid = entry.uid;
  const after = afterRevert(vm, entry);
  // A managed-save image would be resumed instead of the reverted state at the next start.
  // (Asked first: QEMU's libvirt fails the removal when there is no image.)
  if (await hypervisor.hasManagedSave(uid)) await hypervisor.removeManagedSave(uid);
  if (entry.memory) {
    await hypervisor.revertSnapshot(uid, entry.snapshotName, { state: 'paused' });
    if (after === 'stopped') await ignoring(['invalid-state'], () => hypervisor.destroy(uid));
    return;
  }
  const capturedActive = entry.consistency !== 'Stopped';
  await hypervisor.revertSnapshot(uid, entry.snapshotName, capturedActive ? { state: 'paused' } : {});
  // Disk-only: the RAM the host captured with it is not the guest's to continue from.
  if (capturedActive) await ignoring(['invalid-state'], () => hypervisor.destroy(uid));
  if (after === 'run') await ignoring(['invalid-state'], () => hypervisor.start(uid));
  if (after === 'paused') await hypervisor.start(uid, { paused: true });
}

/** Resumes a memory-reverted VM that should run (once its whole group is reverted). */
export async function resumeReverted({ entry, vm, hypervisor }: RevertTarget): Promise<void> {
  if (!entry.memory || afterRevert(vm, entry) !== 'run') return;
  await ignoring(['invalid-state'], () => hypervisor.resume(entry.uid));
}
