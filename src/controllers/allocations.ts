// What each host has given to its VMs: derived from the cache (VMs whose status.host is set)
// plus the placements this process made that the cache has not shown yet. Without the second
// part, 200 VMs placed in one burst would all see the same empty hosts, because each status
// write reaches the cache only after the placement of the next VM.
//
// Placement reads this and records into it synchronously (no await in between), so in one
// process no two placements can take the same free capacity.
import { DEFAULT_CPU, type VirtualMachineSpec } from '../api/virtualmachine.js';
import type { VmObject } from './resources.js';
import { quantityToNumber } from '../api/quantity.js';
import type { Informer } from '../runtime/informer.js';
import { objectKey } from '../runtime/informer.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';

export interface VmResources {
  vcpus: number;
  memoryBytes: number;
}

export function vmResources(
  spec: Pick<VirtualMachineSpec, 'memory'> & { cpu?: VirtualMachineSpec['cpu'] },
): VmResources {
  // A spec as written may lack cpu (a template or the default gives it: template/merge.ts).
  const cpu = spec.cpu ?? DEFAULT_CPU;
  return { vcpus: cpu.cores * cpu.sockets * cpu.threads, memoryBytes: quantityToNumber(spec.memory) };
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

/** One VM's share of its host, as the index holds it. */
interface Share {
  pool: string;
  host: string;
  key: string;
  cpus: number;
  memoryBytes: number;
  group: string | undefined;
}

interface HostTally {
  cpus: number;
  memoryBytes: number;
  vms: Set<string>;
  /** Anti-affinity groups with how many of the host's VMs are in each. */
  groups: Map<string, number>;
}

/** What placement needs of a host: no list of its VMs. */
export type HostLoad = Omit<HostAllocation, 'vms'>;

export class Allocations {
  /** By VM UID: placements not yet seen in the cache. */
  private readonly pending = new Map<string, Placed>();
  /** UIDs of VMs being live-migrated: their domain is on two hosts for a while, neither copy stale. */
  readonly migrating = new Set<string>();
  /**
   * The index, kept up to date from the cache's events and this process's placements (built on
   * first use): a placement reads its pool's hosts in O(hosts), not O(VMs). Summing every VM of
   * the pool for each placement made a burst of N VMs cost O(N²) (bench/scale, issue 20).
   */
  private readonly shares = new Map<string, Share>();
  private readonly tallies = new Map<string, Map<string, HostTally>>();
  private indexed = false;

  constructor(private readonly vms: Informer<VmObject>) {
    vms.on((event) => {
      if (!this.indexed) return;
      const uid = event.object.metadata.uid ?? '';
      if (event.type === 'delete') {
        this.unshare(uid);
        return;
      }
      // A relist may show an object made again under the same name as an update.
      const oldUid = event.type === 'update' ? (event.old.metadata.uid ?? '') : uid;
      if (oldUid !== uid) this.unshare(oldUid);
      this.reshare(event.object);
    });
  }

  record(uid: string, placed: Placed): void {
    this.pending.set(uid, placed);
    this.refresh(uid, placed.key);
  }

  /** This process's placement of the VM, while the cache does not show it yet. */
  pendingFor(uid: string): Placed | undefined {
    return this.pending.get(uid);
  }

  forget(uid: string): void {
    const placed = this.pending.get(uid);
    this.pending.delete(uid);
    this.refresh(uid, placed?.key ?? this.shares.get(uid)?.key);
  }

  /** Forgets the placement of a VM that is gone from the cache (its UID is no longer known). */
  forgetKey(key: string): void {
    for (const [uid, placed] of this.pending) {
      if (placed.key !== key) continue;
      this.pending.delete(uid);
      this.refresh(uid, key);
    }
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

  /** Allocations per host name of `pool`, each host's VMs by key in order. */
  byHost(pool: string): Map<string, HostAllocation> {
    this.ensureIndexed();
    const result = new Map<string, HostAllocation>();
    for (const [host, tally] of this.tallies.get(pool) ?? []) {
      result.set(host, {
        cpus: tally.cpus,
        memoryBytes: tally.memoryBytes,
        vms: [...tally.vms].sort(),
        antiAffinityGroups: new Set(tally.groups.keys()),
      });
    }
    return result;
  }

  /** What each host of `pool` has given, without the list of its VMs (for placement). */
  loads(pool: string): Map<string, HostLoad> {
    this.ensureIndexed();
    const result = new Map<string, HostLoad>();
    for (const [host, tally] of this.tallies.get(pool) ?? []) {
      result.set(host, {
        cpus: tally.cpus,
        memoryBytes: tally.memoryBytes,
        antiAffinityGroups: new Set(tally.groups.keys()),
      });
    }
    return result;
  }

  private ensureIndexed(): void {
    if (this.indexed) return;
    this.indexed = true;
    for (const vm of this.vms.list()) this.reshare(vm);
  }

  /** The VM `uid` (cached under `key`) again, after its placement here changed. */
  private refresh(uid: string, key: string | undefined): void {
    if (!this.indexed) return;
    const vm = key === undefined ? undefined : this.vms.get(key);
    if (vm && (vm.metadata.uid ?? '') === uid) this.reshare(vm);
    else this.unshare(uid);
  }

  private reshare(vm: VmObject): void {
    const uid = vm.metadata.uid ?? '';
    const host = this.hostOf(vm);
    if (!host) {
      this.unshare(uid);
      return;
    }
    const { vcpus, memoryBytes } = vmResources(vm.spec);
    const share: Share = {
      pool: vm.spec.hostPoolRef.name,
      host,
      key: objectKey(vm),
      cpus: vcpus,
      memoryBytes,
      group: vm.spec.placement?.antiAffinityGroup,
    };
    const old = this.shares.get(uid);
    if (
      old &&
      old.pool === share.pool &&
      old.host === share.host &&
      old.key === share.key &&
      old.cpus === share.cpus &&
      old.memoryBytes === share.memoryBytes &&
      old.group === share.group
    )
      return;
    this.unshare(uid);
    this.shares.set(uid, share);
    let hosts = this.tallies.get(share.pool);
    if (!hosts) this.tallies.set(share.pool, (hosts = new Map()));
    let tally = hosts.get(share.host);
    if (!tally) hosts.set(share.host, (tally = { cpus: 0, memoryBytes: 0, vms: new Set(), groups: new Map() }));
    tally.cpus += share.cpus;
    tally.memoryBytes += share.memoryBytes;
    tally.vms.add(share.key);
    if (share.group) tally.groups.set(share.group, (tally.groups.get(share.group) ?? 0) + 1);
  }

  private unshare(uid: string): void {
    const share = this.shares.get(uid);
    if (!share) return;
    this.shares.delete(uid);
    const hosts = this.tallies.get(share.pool);
    const tally = hosts?.get(share.host);
    if (!hosts || !tally) return;
    tally.cpus -= share.cpus;
    tally.memoryBytes -= share.memoryBytes;
    tally.vms.delete(share.key);
    if (share.group) {
      const left = (tally.groups.get(share.group) ?? 1) - 1;
      if (left > 0) tally.groups.set(share.group, left);
      else tally.groups.delete(share.group);
    }
    if (tally.vms.size === 0) hosts.delete(share.host);
    if (hosts.size === 0) this.tallies.delete(share.pool);
  }
}
