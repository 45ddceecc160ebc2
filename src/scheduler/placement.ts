// Placement, pure: a VM's needs and the hosts' state in, a host (with the
// hypervisor and the reason) or, per host, why it does not fit, out.
// Filters: Ready, not in maintenance, hypervisor type, host labels,
// anti-affinity group (mode Required), CPU and memory within the pool's overcommit.
// Scores: spread (most free memory share first) or binpack (least); an anti-affinity group
// of mode Preferred ranks hosts without the group first (KubeVirt's preferred/required split).
// With `hypervisor: auto` the workload's hypervisor is tried before the other, and a Preferred
// group is kept within a hypervisor type before falling back to a host of the group.
import { preferenceOrder, type AutoHypervisorRules, type HypervisorType, type Workload } from './auto-hypervisor.js';
import { matchesSelector, type LabelSelector } from './label-selector.js';
import { formatBytes } from './units.js';

export interface VmRequest {
  vcpus: number;
  memoryBytes: number;
  hypervisor: HypervisorType | 'auto';
  workload: Workload;
  hostSelector?: LabelSelector;
  antiAffinityGroup?: string;
  /** How antiAffinityGroup binds: Required (a filter; the default) or Preferred (a ranking). */
  antiAffinityMode?: 'Required' | 'Preferred';
}

export interface HostState {
  name: string;
  ready: boolean;
  maintenance: boolean;
  hypervisor: HypervisorType | undefined;
  labels: Record<string, string>;
  capacity: { cpus: number; memoryBytes: number };
  allocated: { cpus: number; memoryBytes: number };
  /** Anti-affinity groups of the VMs already placed on the host. */
  antiAffinityGroups: ReadonlySet<string>;
}

export interface PlacementPolicy {
  strategy: 'spread' | 'binpack';
  cpuOvercommit: number;
  memoryOvercommit: number;
  autoRules?: AutoHypervisorRules;
}

export type Placement =
  | { placed: true; host: string; hypervisor: HypervisorType; reason: string }
  | { placed: false; reasons: Array<{ host: string; reason: string }>; message: string };

/** Why `host` cannot take `vm` as `hypervisor`, or undefined when it can. */
export function whyNot(
  vm: VmRequest,
  host: HostState,
  hypervisor: HypervisorType,
  policy: PlacementPolicy,
): string | undefined {
  if (!host.ready) return 'not Ready';
  if (host.maintenance) return 'in maintenance';
  if (host.hypervisor === undefined) return 'hypervisor type unknown';
  if (host.hypervisor !== hypervisor) return `is ${host.hypervisor}, VM needs ${hypervisor}`;
  if (!matchesSelector(host.labels, vm.hostSelector)) return 'labels do not match spec.placement.hostSelector';
  if (
    vm.antiAffinityMode !== 'Preferred' &&
    vm.antiAffinityGroup &&
    host.antiAffinityGroups.has(vm.antiAffinityGroup)
  ) {
    return `already runs a VM of anti-affinity group ${vm.antiAffinityGroup}`;
  }
  const cpuLimit = Math.floor(host.capacity.cpus * policy.cpuOvercommit);
  const freeCpus = cpuLimit - host.allocated.cpus;
  if (vm.vcpus > freeCpus)
    return `insufficient CPU: need ${vm.vcpus}, free ${Math.max(freeCpus, 0)} of ${cpuLimit} (overcommit ${policy.cpuOvercommit})`;
  const memoryLimit = Math.floor(host.capacity.memoryBytes * policy.memoryOvercommit);
  const freeMemory = memoryLimit - host.allocated.memoryBytes;
  if (vm.memoryBytes > freeMemory)
    return `insufficient memory: need ${formatBytes(vm.memoryBytes)}, free ${formatBytes(Math.max(freeMemory, 0))}`;
  return undefined;
}

function freeMemoryShare(host: HostState, policy: PlacementPolicy): number {
  const limit = host.capacity.memoryBytes * policy.memoryOvercommit;
  return limit > 0 ? (limit - host.allocated.memoryBytes) / limit : 0;
}

function best(hosts: HostState[], policy: PlacementPolicy): HostState {
  const sign = policy.strategy === 'spread' ? -1 : 1;
  // Ties break by name, so the same inputs always give the same host.
  return [...hosts].sort(
    (a, b) => sign * (freeMemoryShare(a, policy) - freeMemoryShare(b, policy)) || a.name.localeCompare(b.name),
  )[0]!;
}

export function place(vm: VmRequest, hosts: readonly HostState[], policy: PlacementPolicy): Placement {
  const candidates: HypervisorType[] =
    vm.hypervisor === 'auto' ? preferenceOrder(vm.workload, policy.autoRules) : [vm.hypervisor];
  const reasons = new Map<string, string>();
  for (const [rank, hypervisor] of candidates.entries()) {
    const fitting = hosts.filter((host) => {
      const reason = whyNot(vm, host, hypervisor, policy);
      if (reason && (!reasons.has(host.name) || host.hypervisor === hypervisor)) reasons.set(host.name, reason);
      return !reason;
    });
    if (fitting.length === 0) continue;
    const group = vm.antiAffinityMode === 'Preferred' ? vm.antiAffinityGroup : undefined;
    const apart = group ? fitting.filter((host) => !host.antiAffinityGroups.has(group)) : fitting;
    const chosen = best(apart.length > 0 ? apart : fitting, policy);
    const together =
      group && apart.length === 0
        ? `; every fitting ${hypervisor} host already runs a VM of anti-affinity group ${group} (Preferred), so it shares one`
        : '';
    const why =
      vm.hypervisor !== 'auto'
        ? `spec.hypervisor is ${hypervisor}`
        : rank === 0
          ? `workload ${vm.workload} prefers ${hypervisor}`
          : `workload ${vm.workload} prefers ${candidates[0]}, but no ${candidates[0]} host fits; ${hypervisor} chosen`;
    return {
      placed: true,
      host: chosen.name,
      hypervisor,
      reason: `${why}${together}; ${policy.strategy} chose ${chosen.name}`,
    };
  }
  const list = hosts.map((host) => ({ host: host.name, reason: reasons.get(host.name) ?? 'no fit' }));
  const message =
    list.length === 0
      ? 'the pool has no hosts'
      : `no host fits: ${list.map((r) => `${r.host}: ${r.reason}`).join('; ')}`;
  return { placed: false, reasons: list, message };
}
