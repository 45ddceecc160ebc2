// How a VirtualMachine appears in the VM gauges (virtfleet_vms, virtfleet_vm_ready,
// virtfleet_vm_crash_looping), from its cached object alone.
import type { VmSample } from '../observability/metrics.js';
import { findCondition, type Condition } from '../runtime/conditions.js';
import { VM_REASONS as R } from './reasons.js';
import type { VmObject } from './resources.js';
import { ACTION_ANNOTATION } from './vm-actions.js';

/** The VM should be running now: an alert on it not being Ready means something. */
export function meantToRun(vm: VmObject): boolean {
  const held = vm.metadata.annotations?.[ACTION_ANNOTATION];
  if (held === 'stop' || held === 'pause') return false;
  const ready = findCondition((vm.status?.conditions ?? []) as Condition[], 'Ready');
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

export function vmSample(vm: VmObject): VmSample {
  const ready = findCondition((vm.status?.conditions ?? []) as Condition[], 'Ready');
  return {
    namespace: vm.metadata.namespace ?? '',
    name: vm.metadata.name ?? '',
    phase: vm.status?.phase ?? 'Pending',
    ready: ready?.status === 'True',
    meantToRun: meantToRun(vm),
  };
}
