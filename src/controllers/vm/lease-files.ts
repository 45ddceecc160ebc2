// The VM's lease file (HostPool spec.leases): virtlockd locks a file named by the lease's key in
// the hosts' shared lockspace directory, but creates it only for disk leases, not for <lease>
// elements. The controller makes it, before the domain is defined with its <lease>, as an empty
// raw volume of a libvirt dir pool over that directory; it is deleted with the VM.
import type { HostPoolSpec } from '../../api/hostpool.js';
import { ignoring, isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { leaseKey } from '../vm-domain.js';

type Leases = NonNullable<HostPoolSpec['leases']>;

/** spec.leases cannot be used on a host (its message says what to fix). */
export class LeaseSetupError extends Error {}

export class LeaseFiles {
  /** `uri|pool` whose storage pool was checked, `uri|uid` whose file exists: saves calls. */
  private readonly known = new Set<string>();

  async ensure(leases: Leases, hypervisor: Hypervisor, uid: string): Promise<void> {
    if (this.known.has(`${hypervisor.uri}|${uid}`)) return;
    const poolKey = `${hypervisor.uri}|${leases.storagePool}`;
    if (!this.known.has(poolKey)) {
      await hypervisor.ensureStoragePool({ name: leases.storagePool, path: leases.lockspace });
      const path = (await hypervisor.storagePoolPath(leases.storagePool)).replace(/\/$/, '');
      if (path !== leases.lockspace.replace(/\/$/, '')) {
        throw new LeaseSetupError(
          `storage pool ${leases.storagePool} on ${hypervisor.uri} is at ${path}, not at spec.leases.lockspace ${leases.lockspace}: ` +
            'name another pool in spec.leases.storagePool, or point this one at the lockspace',
        );
      }
      this.known.add(poolKey);
    }
    const name = leaseKey(uid);
    // The lockspace is shared: another host may have made the file since this host listed the pool.
    if (!(await hypervisor.volume(leases.storagePool, name))) await hypervisor.refreshStoragePool(leases.storagePool);
    if (!(await hypervisor.volume(leases.storagePool, name))) {
      await ignoring(['already-exists'], () =>
        hypervisor.createVolume(leases.storagePool, { name, format: 'raw', capacityBytes: 0 }),
      );
    }
    this.known.add(`${hypervisor.uri}|${uid}`);
  }

  /** After the domain is gone. */
  async remove(leases: Leases, hypervisor: Hypervisor, uid: string): Promise<void> {
    try {
      await hypervisor.deleteVolume(leases.storagePool, leaseKey(uid));
    } catch (error) {
      if (!isHypervisorError(error, 'not-found')) throw error; // the pool itself is gone: nothing to remove
    }
    this.forget(uid);
  }

  forget(uid: string): void {
    for (const key of this.known) if (key.endsWith(`|${uid}`)) this.known.delete(key);
  }
}
