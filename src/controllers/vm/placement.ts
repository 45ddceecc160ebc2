// Step: placement. Once per VM, recorded in status before anything is made on a host (a
// controller that dies after a define finds the domain where status says instead of placing the
// VM a second time); again only when its host failed and was fenced (placeElsewhere, for the
// recovery step). Writes Scheduled.
import { objectKey } from '../../runtime/informer.js';
import { DEFAULT_AUTO_RULES, type HypervisorType } from '../../scheduler/auto-hypervisor.js';
import type { LabelSelector } from '../../scheduler/label-selector.js';
import { place, type HostState, type PlacementPolicy, type VmRequest } from '../../scheduler/placement.js';
import { vmResources, type Placed } from '../allocations.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';

/** The VM's placement, from status or from this process's newer decision. */
export interface Placement {
  host: string;
  hypervisor: HypervisorType | undefined;
}

export class PlacementStep {
  constructor(private readonly kit: VmKit) {}

  placementOf(vm: VmObject): Placement | undefined {
    const pending = this.kit.options.allocations.pendingFor(vm.metadata.uid ?? '');
    if (pending) return { host: pending.host, hypervisor: pending.hypervisor };
    return vm.status?.host ? { host: vm.status.host, hypervisor: vm.status.hypervisor } : undefined;
  }

  /**
   * The VM's host: from status, or placed now. Placement and the allocation record happen with
   * no await in between, so concurrent reconciles never take the same free capacity.
   */
  ensurePlaced(vm: VmObject, pool: PoolObject | undefined, draft: VmStatusDraft): Placement | undefined {
    const { allocations } = this.kit.options;
    const placed = this.placementOf(vm);
    if (placed) {
      const pending = allocations.pendingFor(vm.metadata.uid ?? '');
      if (pending) recordPlacement(draft, pending);
      // Still placed, now for this generation too.
      else
        draft.set(
          C.Scheduled,
          'True',
          R.Placed,
          `placed on ${placed.host}: ${vm.status?.hypervisorReason ?? 'recorded in status'}`,
        );
      return placed;
    }
    const poolName = vm.spec.hostPoolRef.name;
    // Ready=False says why too: tools that read Ready (kstatus, kubectl wait) must not take a VM
    // that waits for a host for one that is done.
    if (!pool) {
      draft.phase('Pending');
      const changed = draft.set(
        C.Scheduled,
        'False',
        R.HostPoolNotFound,
        `HostPool ${poolName} does not exist: create it, or fix spec.hostPoolRef.name`,
      );
      draft.set(C.Ready, 'False', R.HostPoolNotFound, 'not placed on a host (see Scheduled)');
      if (changed) this.kit.event(vm, 'Warning', E.FailedScheduling, `HostPool ${poolName} does not exist`);
      return undefined;
    }
    const result = place(vmRequest(vm), this.hostStates(poolName), schedulingPolicy(pool));
    if (!result.placed) {
      draft.phase('Pending');
      const before = draft.condition(C.Scheduled)?.message;
      draft.set(C.Scheduled, 'False', R.Unschedulable, result.message);
      draft.set(
        C.Ready,
        'False',
        R.Unschedulable,
        'not placed on a host: no host of the pool can take it (see Scheduled)',
      );
      if (before !== result.message) this.kit.event(vm, 'Warning', E.FailedScheduling, result.message);
      return undefined;
    }
    const record: Placed = {
      key: objectKey(vm),
      pool: poolName,
      host: result.host,
      hypervisor: result.hypervisor,
      reason: result.reason,
    };
    allocations.record(vm.metadata.uid ?? '', record);
    recordPlacement(draft, record);
    const ready = draft.condition(C.Ready)?.reason;
    if (ready === R.Unschedulable || ready === R.HostPoolNotFound)
      draft.set(C.Ready, 'False', R.Placed, `placed on ${result.host}; the domain is being made`);
    this.kit.note(vm, E.Scheduled, `placed on ${result.host} (${result.hypervisor}): ${result.reason}`);
    return { host: result.host, hypervisor: result.hypervisor };
  }

  /** Another host of the pool than `from`, recorded as the VM's placement; undefined (with Scheduled=False) when none can take it. */
  placeAwayFrom(
    vm: VmObject,
    pool: PoolObject,
    from: string,
    reason: string,
    draft: VmStatusDraft,
  ): { placed: Placed; why: string } | { placed: undefined; message: string } {
    const poolName = pool.metadata.name ?? '';
    const result = place(
      vmRequest(vm),
      this.hostStates(poolName).filter((host) => host.name !== from),
      schedulingPolicy(pool),
    );
    if (!result.placed) return { placed: undefined, message: result.message };
    const record: Placed = {
      key: objectKey(vm),
      pool: poolName,
      host: result.host,
      hypervisor: result.hypervisor,
      reason: `${reason}; ${result.reason}`,
    };
    this.kit.options.allocations.record(vm.metadata.uid ?? '', record);
    recordPlacement(draft, record);
    return { placed: record, why: result.reason };
  }

  /** The pool's hosts as placement sees them: the Fleet's readiness and this process's allocations. */
  hostStates(pool: string): HostState[] {
    const allocations = this.kit.options.allocations.loads(pool);
    return this.kit.options.fleet
      .hosts(pool)
      .filter((host) => host.inSpec)
      .map((host) => {
        const allocated = allocations.get(host.name);
        return {
          name: host.name,
          ready: host.verdict.readiness.ready,
          maintenance: host.maintenance,
          hypervisor: host.verdict.readiness.hypervisor,
          labels: host.labels,
          capacity: { cpus: host.observed.facts?.cpu.count ?? 0, memoryBytes: host.observed.facts?.memoryBytes ?? 0 },
          allocated: { cpus: allocated?.cpus ?? 0, memoryBytes: allocated?.memoryBytes ?? 0 },
          antiAffinityGroups: allocated?.antiAffinityGroups ?? new Set<string>(),
        };
      });
  }
}

export function recordPlacement(draft: VmStatusDraft, placed: Placed): void {
  draft.status.host = placed.host;
  draft.status.hypervisor = placed.hypervisor;
  draft.status.hypervisorReason = placed.reason;
  draft.set(C.Scheduled, 'True', R.Placed, `placed on ${placed.host}: ${placed.reason}`);
  if (!draft.status.phase || draft.status.phase === 'Pending') draft.phase('Provisioning');
}

export function vmRequest(vm: VmObject): VmRequest {
  const { vcpus, memoryBytes } = vmResources(vm.spec);
  return {
    vcpus,
    memoryBytes,
    hypervisor: vm.spec.hypervisor,
    workload: vm.spec.workload,
    ...(vm.spec.placement?.hostSelector ? { hostSelector: vm.spec.placement.hostSelector as LabelSelector } : {}),
    ...(vm.spec.placement?.antiAffinityGroup
      ? {
          antiAffinityGroup: vm.spec.placement.antiAffinityGroup,
          // Objects from before the field existed have no default filled in: the old, hard meaning.
          antiAffinityMode: vm.spec.placement.antiAffinityMode ?? 'Required',
        }
      : {}),
  };
}

export function schedulingPolicy(pool: PoolObject): PlacementPolicy {
  const { strategy, cpuOvercommit, memoryOvercommit, autoHypervisor } = pool.spec.scheduling;
  return {
    strategy,
    cpuOvercommit,
    memoryOvercommit,
    ...(autoHypervisor ? { autoRules: { ...DEFAULT_AUTO_RULES, ...autoHypervisor } } : {}),
  };
}
