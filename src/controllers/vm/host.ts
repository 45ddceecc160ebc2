// Step: the VM's host is ready. Everything after placement runs on the host's hypervisor; while
// the host is not ready (connecting, failed, unreachable) the reconcile halts with a condition
// that says why and looks again later. Writes Ready (Unknown or False) and the phase.
import type { FleetHost } from '../../hosts/fleet.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import { Halt, type VmKit } from './kit.js';
import type { Placement } from './placement.js';
import type { RecoveryWait } from './recovery.js';

export class HostStep {
  constructor(private readonly kit: VmKit) {}

  /** The VM's host when it is ready; otherwise the reconcile halts with a condition saying why. */
  readyHost(
    vm: VmObject,
    pool: PoolObject | undefined,
    placement: Placement,
    draft: VmStatusDraft,
    blocked?: RecoveryWait,
  ): FleetHost {
    const poolName = vm.spec.hostPoolRef.name;
    const host = this.kit.options.fleet.host(poolName, placement.host);
    if (pool && host?.verdict.readiness.ready && host.observed.facts) return host;
    if (blocked) {
      draft.phase('Unknown');
      const before = draft.condition(C.Ready)?.message;
      draft.set(C.Ready, 'Unknown', blocked.reason, blocked.message);
      if (before !== blocked.message) this.kit.event(vm, 'Warning', blocked.reason, blocked.message);
      throw new Halt(this.kit.hostRetryMs);
    }
    const why = !pool
      ? `HostPool ${poolName} does not exist`
      : !host
        ? `host ${placement.host} is not connected yet`
        : `host ${placement.host} is not ready: ${host.verdict.readiness.reason} (${host.verdict.readiness.message})`;
    const provisioned = draft.condition(C.Provisioned)?.status === 'True';
    draft.phase(provisioned ? 'Unknown' : 'Provisioning');
    draft.set(C.Ready, provisioned ? 'Unknown' : 'False', R.HostNotReady, `${why}; the VM is handled once it is ready`);
    throw new Halt(this.kit.hostRetryMs);
  }

  /** A call to the host failed for want of an answer: the VM's state is unknown until it answers. */
  unreachable(vm: VmObject, draft: VmStatusDraft, message: string): void {
    draft.phase('Unknown');
    if (draft.set(C.Ready, 'Unknown', R.HostUnreachable, `${message}; looking again when the host answers`)) {
      this.kit.event(vm, 'Warning', E.HostUnreachable, message);
    }
  }
}
