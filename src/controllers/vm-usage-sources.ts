// What the per-VM usage collector (observability/vm-usage.ts) reads, from the controller's own
// state: the Fleet's hosts of the served HostPools that are reachable now, and the VMs in the
// informer cache (a domain's UUID is its VM's UID).
import type { Fleet } from '../hosts/fleet.js';
import type { UsageSources } from '../observability/vm-usage.js';
import type { Informer } from '../runtime/informer.js';
import type { PoolObject, VmObject } from './resources.js';

export function vmUsageSources(fleet: Fleet, pools: Informer<PoolObject>, vms: Informer<VmObject>): UsageSources {
  return {
    hosts: () =>
      pools
        .list()
        .flatMap((pool) => fleet.hosts(pool.metadata.name ?? ''))
        // Not asked while disconnected or without usable credentials: the call could only wait.
        .filter((host) => !host.observed.disconnected && !host.observed.credentialsProblem)
        .map((host) => ({ pool: host.pool, name: host.name, hypervisor: fleet.hypervisor(host.uri) })),
    vms: () =>
      vms.list().map((vm) => ({
        uid: vm.metadata.uid ?? '',
        namespace: vm.metadata.namespace ?? '',
        name: vm.metadata.name ?? '',
      })),
  };
}
