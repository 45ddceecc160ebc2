// Step: disks. A volume for each of spec.disks, made before the domain is defined (vm-storage.ts).
// An image still on its way halts the reconcile with its progress in Provisioned and comes back
// later; a failure says which disk field and which host, and is retried. Writes Provisioned.
// With spec.cloudInit, the NoCloud seed volume too (cloud-init.ts), handed on under CLOUD_INIT_SEED.
import type { DiskBacking } from '../../hypervisors/domain-xml.js';
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import type { FleetHost } from '../../hosts/fleet.js';
import { errorText } from '../error-text.js';
import { secretLookup } from '../installprofile.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import { volumeNameOf, type DiskProvisioner, type ProvisionResult, type StorageSpec } from '../vm-storage.js';
import type { VmStatusDraft } from '../vm-status.js';
import { CLOUD_INIT_SEED, CloudInitSeeds } from './cloud-init.js';
import { Halt, type VmKit } from './kit.js';

/** When a seed that cannot be made is tried again (a Secret may appear meanwhile). */
const SEED_RETRY_MS = 30_000;

export class DisksStep {
  readonly seeds: CloudInitSeeds;

  constructor(
    private readonly kit: VmKit,
    readonly provisioner: DiskProvisioner,
  ) {
    this.seeds = new CloudInitSeeds((namespace) => secretLookup(kit.options.client, namespace));
  }

  async ensure(
    vm: VmObject,
    pool: PoolObject,
    host: FleetHost,
    hypervisor: Hypervisor,
    draft: VmStatusDraft,
  ): Promise<Record<string, DiskBacking>> {
    let result = await this.provisioner.provision(vm, pool.spec.storage, host.name, hypervisor);
    if (result.state === 'ready' && vm.spec.cloudInit) {
      const seeded = await this.seed(vm, pool, host, hypervisor);
      if ('backing' in seeded) result = { ...result, disks: { ...result.disks, [CLOUD_INIT_SEED]: seeded.backing } };
      else result = seeded;
    }
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

  /** The seed volume, or a failed result naming the field (and the host) to fix. */
  private async seed(
    vm: VmObject,
    pool: PoolObject,
    host: FleetHost,
    hypervisor: Hypervisor,
  ): Promise<{ backing: DiskBacking } | ProvisionResult> {
    const storage = pool.spec.storage;
    const failed = (message: string): ProvisionResult => ({
      state: 'failed',
      reason: 'ProvisioningFailed',
      message,
      requeueAfterMs: SEED_RETRY_MS,
      retryDelayMs: SEED_RETRY_MS,
    });
    try {
      const outcome = await this.seeds.ensure(vm, storage, hypervisor);
      if (outcome.state === 'failed') return failed(outcome.message);
      if (outcome.written)
        this.kit.event(
          vm,
          'Normal',
          E.VolumesCreated,
          `cloud-init seed (cidata CD-ROM) written to storage pool ${storage.pool} on ${host.name}`,
        );
      return { backing: outcome.backing };
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return failed(`spec.cloudInit: the seed volume cannot be written on host ${host.name}: ${errorText(error)}`);
    }
  }

  /** After the domain is gone: the volumes of its disks, except those with spec.disks[].retain. */
  async remove(vm: VmObject, hypervisor: Hypervisor, hostName: string): Promise<void> {
    const storage: StorageSpec = this.kit.options.pools.get(vm.spec.hostPoolRef.name)?.spec.storage ?? {
      pool: 'default',
      shared: false,
    };
    const { deleted, retained } = await this.provisioner.remove(vm, storage, hypervisor);
    // Also when spec.cloudInit was dropped since the seed was written.
    if (await this.seeds.remove(vm, storage, hypervisor)) deleted.push(volumeNameOf(vm, CLOUD_INIT_SEED));
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
    this.seeds.forget(uid);
    void this.provisioner.cancel(uid);
  }
}
