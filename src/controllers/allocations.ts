// What each host has given to its VMs: derived from the cache (VMs whose status.host is set)
// plus the placements this process made that the cache has not shown yet. Without the second
// part, 200 VMs placed in one burst would all see the same empty hosts, because each status
// write reaches the cache only after the placement of the next VM.
//
// Placement reads this and records into it synchronously (no await in between), so in one
// process no two placements can take the same free capacity.
import type { VirtualMachineSpec } from '../api/virtualmachine.js';
import type { VmObject } from './resources.js';
import { quantityToNumber } from '../api/quantity.js';
import type { Informer } from '../runtime/informer.js';
import { objectKey } from '../runtime/informer.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';

export interface VmResources {
  vcpus: number;
  memoryBytes: number;
}

export function vmResources(spec: Pick<VirtualMachineSpec, 'cpu' | 'memory'>): VmResources {
  return { vcpus: spec.cpu.cores * spec.cpu.sockets * spec.cpu.threads, memoryBytes: quantityToNumber(spec.memory) };
}

/** A placement made by this process. */
export interface Placed {
  key: string;
  pool: string;
  host: string;
  hypervisor: HypervisorType;
  reason: string;
}

export interface HostAllocation {
  cpus: number;
  memoryBytes: number;
  /** namespace/name of the VMs placed on the host. */
  vms: string[];
  antiAffinityGroups: Set<string>;
}

export class Allocations {
  /** By VM UID: placements not yet seen in the cache. */
  private readonly pending = new Map<string, Placed>();
  /** UIDs of VMs being live-migrated: their domain is on two hosts for a while, neither copy stale. */
  readonly migrating = new Set<string>();

  constructor(private readonly vms: Informer<VmObject>) {}

  record(uid: string, placed: Placed): void {
    this.pending.set(uid, placed);
  }

  /** This process's placement of the VM, while the cache does not show it yet. */
  pendingFor(uid: string): Placed | undefined {
    return this.pending.get(uid);
  }

  forget(uid: string): void {
    this.pending.delete(uid);
  }

  /** Forgets the placement of a VM that is gone from the cache (its UID is no longer known). */
  forgetKey(key: string): void {
    for (const [uid, placed] of this.pending) if (placed.key === key) this.pending.delete(uid);
  }

  /** Where each VM of `pool` is placed: the cache's status.host, or this process's newer placement. */
  hostOf(vm: VmObject): string | undefined {
    const uid = vm.metadata.uid ?? '';
    const placed = this.pending.get(uid);
    if (placed && vm.status?.host === placed.host) {
      this.pending.delete(uid); // the cache caught up
      return placed.host;
    }
    return placed?.host ?? vm.status?.host;
  }

  /** Allocations per host name of `pool`. */
  byHost(pool: string): Map<string, HostAllocation> {
    const result = new Map<string, HostAllocation>();
    for (const vm of this.vms.list()) {
      if (vm.spec.hostPoolRef.name !== pool) continue;
      const host = this.hostOf(vm);
      if (!host) continue;
      let entry = result.get(host);
      if (!entry) {
        entry = { cpus: 0, memoryBytes: 0, vms: [], antiAffinityGroups: new Set() };
        result.set(host, entry);
      }
      const { vcpus, memoryBytes } = vmResources(vm.spec);
      entry.cpus += vcpus;
      entry.memoryBytes += memoryBytes;
      entry.vms.push(objectKey(vm));
      const group = vm.spec.placement?.antiAffinityGroup;
      if (group) entry.antiAffinityGroups.add(group);
    }
    return result;
  }
}
