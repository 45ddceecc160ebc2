// Step: deletion. Stops the domain (a graceful shutdown, destroyed after the grace period),
// undefines it, deletes its volumes (not those with retain) and its lease, releases the
// placement, forgets the VM, and only then removes the finalizer. While its host cannot be
// reached the VM stays Terminating and says what a person can do.
import { ignoring, isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { hasFinalizer, removeFinalizer } from '../../runtime/finalizers.js';
import type { ReconcileResult } from '../../runtime/reconciler.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import { VIRTUAL_MACHINE, VM_FINALIZER, type VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { DisksStep } from './disks.js';
import type { VmKit } from './kit.js';
import type { LeaseStep } from './lease.js';
import type { PlacementStep } from './placement.js';
import type { PowerStep } from './power.js';

export interface DeletionSteps {
  placement: PlacementStep;
  power: PowerStep;
  disks: DisksStep;
  lease: LeaseStep;
  /** Every step forgets the VM (one loop, in the reconciler). */
  forget: (uid: string) => void;
}

export class DeletionStep {
  constructor(
    private readonly kit: VmKit,
    private readonly steps: DeletionSteps,
  ) {}

  async finalize(vm: VmObject, draft: VmStatusDraft): Promise<ReconcileResult | void> {
    if (!hasFinalizer(vm, VM_FINALIZER)) return;
    const { options } = this.kit;
    const uid = vm.metadata.uid ?? '';
    const placement = this.steps.placement.placementOf(vm);
    if (placement) {
      const host = options.fleet.host(vm.spec.hostPoolRef.name, placement.host);
      draft.phase('Terminating');
      if (!host) {
        draft.set(
          C.Ready,
          'False',
          R.Terminating,
          `waiting for host ${placement.host} of HostPool ${vm.spec.hostPoolRef.name} to be connected to delete the domain; ` +
            'if the pool or host is gone for good, remove the finalizer by hand (the domain may remain on the host)',
        );
        await this.kit.writeStatus(vm, draft);
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
      try {
        const hypervisor = options.fleet.hypervisor(host.uri);
        const step = await this.removeDomain(vm, hypervisor);
        if (step !== undefined) {
          draft.set(
            C.Ready,
            'False',
            R.ShuttingDown,
            `shutting down before deletion; destroyed if still running after ${this.kit.graceMs / 1000} s`,
          );
          await this.kit.writeStatus(vm, draft);
          return { requeueAfterMs: step };
        }
        await this.steps.disks.remove(vm, hypervisor, host.name);
        await this.steps.lease.remove(vm, hypervisor);
      } catch (error) {
        if (!isHypervisorError(error, 'unreachable')) throw error;
        draft.set(
          C.Ready,
          'Unknown',
          R.HostUnreachable,
          `cannot delete the domain: host ${placement.host} is unreachable (${error.message}); the VM is deleted once the host answers`,
        );
        await this.kit.writeStatus(vm, draft);
        this.kit.event(
          vm,
          'Warning',
          E.HostUnreachable,
          `cannot delete the domain on ${placement.host}: ${error.message}`,
        );
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
    }
    await this.steps.disks.provisioner.cancel(uid);
    options.allocations.forget(uid);
    this.steps.forget(uid);
    await removeFinalizer(options.client, VIRTUAL_MACHINE, vm, VM_FINALIZER);
  }

  /** Undefined when the domain is gone; otherwise the delay before looking again (a shutdown is under way). */
  private async removeDomain(vm: VmObject, hypervisor: Hypervisor): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const domain = await hypervisor.lookup(uid);
    if (!domain) return undefined;
    const after = await this.steps.power.stop(vm, hypervisor, domain);
    if (after !== undefined) return after;
    await ignoring(['not-found'], () => hypervisor.undefine(uid));
    this.kit.event(vm, 'Normal', E.Undefined, `domain ${domain.name} removed from ${hypervisor.uri}`);
    return undefined;
  }
}
