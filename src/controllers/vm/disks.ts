// Step: disks. A volume for each of spec.disks, made before the domain is defined (vm-storage.ts).
// An image still on its way halts the reconcile with its progress in Provisioned and comes back
// later; a failure says which disk field and which host, and is retried. Writes Provisioned.
import type { DiskBacking } from '../../hypervisors/domain-xml.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import type { FleetHost } from '../../hosts/fleet.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { DiskProvisioner, StorageSpec } from '../vm-storage.js';
import type { VmStatusDraft } from '../vm-status.js';
import { Halt, type VmKit } from './kit.js';

export class DisksStep {
  constructor(
    private readonly kit: VmKit,
    readonly provisioner: DiskProvisioner,
  ) {}

  async ensure(
    vm: VmObject,
    pool: PoolObject,
    host: FleetHost,
    hypervisor: Hypervisor,
    draft: VmStatusDraft,
  ): Promise<Record<string, DiskBacking>> {
    const result = await this.provisioner.provision(vm, pool.spec.storage, host.name, hypervisor);
    if (result.state === 'ready') {
      if (result.created.length > 0) {
        this.kit.event(
          vm,
          'Normal',
          E.VolumesCreated,
          `volumes for ${result.created.join(', ')} created in storage pool ${pool.spec.storage.pool} on ${host.name}`,
        );
      }
      return result.disks;
    }
    const defined =
      draft.condition(C.Provisioned)?.status === 'True' && draft.condition(C.Provisioned)?.reason === R.Defined;
    if (!defined) draft.phase('Provisioning');
    if (result.state === 'pending') {
      draft.set(C.Provisioned, 'False', R.ProvisioningDisks, result.message);
      throw new Halt(result.requeueAfterMs);
    }
    const before = draft.condition(C.Provisioned)?.message;
    draft.set(
      C.Provisioned,
      'False',
      result.reason,
      `${result.message}; retrying in ${Math.round(result.retryDelayMs / 1000)} s`,
    );
    if (before === undefined || !before.startsWith(result.message))
      this.kit.event(vm, 'Warning', E.ProvisioningFailed, result.message);
    if (!defined) draft.set(C.Ready, 'False', result.reason, 'the disks cannot be made (see Provisioned)');
    throw new Halt(result.requeueAfterMs);
  }

  /** After the domain is gone: the volumes of its disks, except those with spec.disks[].retain. */
  async remove(vm: VmObject, hypervisor: Hypervisor, hostName: string): Promise<void> {
    const storage: StorageSpec = this.kit.options.pools.get(vm.spec.hostPoolRef.name)?.spec.storage ?? {
      pool: 'default',
      shared: false,
    };
    const { deleted, retained } = await this.provisioner.remove(vm, storage, hypervisor);
    if (deleted.length > 0)
      this.kit.event(
        vm,
        'Normal',
        E.VolumesDeleted,
        `volumes ${deleted.join(', ')} deleted from storage pool ${storage.pool} on ${hostName}`,
      );
    if (retained.length > 0) {
      this.kit.event(
        vm,
        'Normal',
        E.VolumesRetained,
        `volumes ${retained.join(', ')} kept in storage pool ${storage.pool} on ${hostName} (retain: true); a VM of the same name uses them again`,
      );
    }
  }

  forget(uid: string): void {
    void this.provisioner.cancel(uid);
  }
}
