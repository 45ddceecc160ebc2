// Step: the VM's lease (HostPool spec.leases): its file in the hosts' lockspace, made before a
// domain with a <lease> is defined (lease-files.ts), removed with the VM. Writes Provisioned
// (LeaseUnavailable) when the pool's lease storage cannot be used.
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { errorText } from '../error-text.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import { Halt, type VmKit } from './kit.js';
import { LeaseFiles } from './lease-files.js';

export class LeaseStep {
  private readonly files = new LeaseFiles();

  constructor(private readonly kit: VmKit) {}

  async ensure(vm: VmObject, pool: PoolObject, hypervisor: Hypervisor, draft: VmStatusDraft): Promise<void> {
    const leases = pool.spec.leases;
    if (!leases) return;
    try {
      await this.files.ensure(leases, hypervisor, vm.metadata.uid ?? '');
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      const message = `cannot make the VM's lease in HostPool ${pool.metadata.name ?? ''} spec.leases: ${errorText(error)}`;
      if (draft.set(C.Provisioned, 'False', R.LeaseUnavailable, `${message}; retrying`))
        this.kit.event(vm, 'Warning', E.ProvisioningFailed, message);
      if (draft.condition(C.Ready)?.status !== 'True')
        draft.set(C.Ready, 'False', R.LeaseUnavailable, "the VM's lease cannot be made (see Provisioned)");
      throw new Halt(this.kit.hostRetryMs);
    }
  }

  /** After the domain is gone. */
  async remove(vm: VmObject, hypervisor: Hypervisor): Promise<void> {
    const leases = this.kit.options.pools.get(vm.spec.hostPoolRef.name)?.spec.leases;
    if (leases) await this.files.remove(leases, hypervisor, vm.metadata.uid ?? '');
  }

  forget(uid: string): void {
    this.files.forget(uid);
  }
}
