// How a VirtualMachine appears in the VM gauges (virtfleet_vms, virtfleet_vm_ready,
// virtfleet_vm_crash_looping, virtfleet_vm_installing), from its cached object alone.
import type { VmSample } from '../observability/metrics.js';
import { findCondition } from '../runtime/conditions.js';
import { VM_REASONS as R } from './reasons.js';
import type { VmObject } from './resources.js';
import { heldBy } from './vm-actions.js';

/** The VM should be running now: an alert on it not being Ready means something. */
export function meantToRun(vm: VmObject): boolean {
  if (heldBy(vm.metadata.annotations)) return false;
  const ready = findCondition(vm.status?.conditions, 'Ready');
  switch (vm.spec.runStrategy) {
    case 'Always':
      return true;
    case 'RerunOnFailure':
      // A guest that powered itself off stays off by design.
      return !(vm.status?.phase === 'Stopped' && ready?.reason === R.Stopped);
    case 'Manual':
      return vm.status?.lastAction?.action === 'start' && vm.status.phase !== 'Stopped';
    case 'Halted':
      return false;
  }
}

/**
 * Installed=False reasons of an install that is under way and ends by itself: the installer runs
 * (phase Installing; the profile's timeoutMinutes bound it, then InstallTimedOut), its kernel and
 * initrd are being put on the host, or it waits for another VM's install on the same MAC. Not the
 * reasons that wait for a person (no endpoint, no valid profile, media that cannot be fetched)
 * nor a failed install: a VM held by those is down.
 */
const INSTALL_UNDER_WAY: ReadonlySet<string> = new Set([R.Installing, R.PreparingInstall, R.InstallMacInUse]);

/** The VM is being installed (spec.install): not Ready, by design, for as long as the install takes. */
export function installing(vm: VmObject): boolean {
  const installed = findCondition(vm.status?.conditions, 'Installed');
  return installed?.status === 'False' && INSTALL_UNDER_WAY.has(installed.reason);
}

export function vmSample(vm: VmObject): VmSample {
  const ready = findCondition(vm.status?.conditions, 'Ready');
  return {
    namespace: vm.metadata.namespace ?? '',
    name: vm.metadata.name ?? '',
    phase: vm.status?.phase ?? 'Pending',
    ready: ready?.status === 'True',
    meantToRun: meantToRun(vm),
    installing: installing(vm),
  };
}
