// Step: recovery from a failed host. A VM of a failed host is started elsewhere only once the
// old copy is known dead, never on a guess: the host's fencing command confirmed power-off, or,
// in a pool with spec.leases and no fencing command (or one that failed), the lock manager of
// the new host grants the VM's leases (lease-recovery.ts: the start is tried, and refused while
// the old copy holds them). Otherwise it waits with a reason that says what would unblock it,
// and the virtfleet_vm_recovery_blocked series says so to Prometheus.
import { ACTION_ANNOTATION, heldBy } from '../vm-actions.js';
import { FAILED_HOST_REASONS } from '../pool-status.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';
import type { MigrationRecord } from './location.js';
import type { Placement, PlacementStep } from './placement.js';

/** Whether a VM of a failed host may be started elsewhere now, or why it waits. */
export type RecoveryVerdict =
  | { go: true; failedAt: number; proof: 'fenced'; fencedBy: string }
  /** Tried by lease: the lock manager of the new host refuses the start while the old copy holds the leases. */
  | { go: true; failedAt: number; proof: 'lease'; from: string }
  | RecoveryWait;
export interface RecoveryWait {
  go: false;
  reason: string;
  message: string;
  /** The reason label of virtfleet_vm_recovery_blocked, when the wait needs a person. */
  metric?: 'no_fencing' | 'fencing_failed' | 'disks_not_shared' | 'lease_held';
}

export class RecoveryStep {
  constructor(
    private readonly kit: VmKit,
    private readonly placement: PlacementStep,
  ) {}

  /**
   * Whether the VM's failed host lets it be started elsewhere now. Undefined while the host has
   * not failed (ready, or only connecting / misconfigured).
   */
  verdict(
    vm: VmObject,
    pool: PoolObject | undefined,
    placement: Placement,
    /** status.migration: a live migration recorded, whose end is not settled yet. */
    migration?: MigrationRecord,
  ): RecoveryVerdict | undefined {
    if (!pool) return undefined;
    const host = this.kit.options.fleet.host(pool.metadata.name ?? '', placement.host);
    if (!host || host.verdict.readiness.ready || !FAILED_HOST_REASONS.has(host.verdict.readiness.reason ?? ''))
      return undefined;
    const poolName = pool.metadata.name ?? '';
    const failure = `host ${host.name} failed (${host.verdict.readiness.reason}: ${host.verdict.readiness.message})`;
    const held = heldBy(vm.metadata.annotations);
    const wanted =
      vm.spec.recovery.evacuate &&
      (vm.spec.runStrategy === 'Always' || vm.spec.runStrategy === 'RerunOnFailure') &&
      !held;
    if (!wanted) {
      const why = !vm.spec.recovery.evacuate
        ? 'spec.recovery.evacuate is false'
        : held
          ? `it is held by ${ACTION_ANNOTATION}=${held}`
          : `runStrategy ${vm.spec.runStrategy} does not restart it`;
      return { go: false, reason: R.HostNotReady, message: `${failure}; the VM waits for it (${why})` };
    }
    if ((vm.spec.disks?.length ?? 0) > 0 && !pool.spec.storage.shared) {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'disks_not_shared',
        message:
          `${failure}; the VM is not started elsewhere: its disks are in storage pool ${pool.spec.storage.pool} on ${host.name} only ` +
          `(HostPool ${poolName} spec.storage.shared is false). Bring the host back, or use shared storage and set spec.storage.shared`,
      };
    }
    const declared = pool.spec.hosts.find((entry) => entry.name === host.name)?.fencing;
    const fencing = host.verdict.fencing;
    const failedAt = host.verdict.notReadySince ?? this.kit.now();
    if (fencing?.state === 'Fenced') return { go: true, failedAt, proof: 'fenced', fencedBy: fencing.message };
    // Fencing comes first; the leases decide without a fencing command, or once it failed.
    const fencingFirst = declared?.method === 'command' && fencing?.state !== 'Failed';
    if (pool.spec.leases && !fencingFirst) {
      // Mid-migration the destination holds a copy too (paused before the switchover, running
      // after): where the VM is gets settled by the location rule once the host answers or is
      // fenced, not by a start elsewhere.
      if (migration) {
        return {
          go: false,
          reason: R.RecoveryBlocked,
          metric: declared?.method === 'command' ? 'fencing_failed' : 'no_fencing',
          message:
            `${failure} during a live migration to ${migration.target}; the VM is not started elsewhere until it is settled where it runs, ` +
            'once the host answers again or is fenced (its leases keep a second copy from running meanwhile)',
        };
      }
      return { go: true, failedAt, proof: 'lease', from: host.name };
    }
    if (declared?.method !== 'command') {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'no_fencing',
        message:
          `${failure}; the VM is not started elsewhere because its old copy may still be running there and no fencing is configured ` +
          `(HostPool ${poolName} spec.hosts[${host.name}].fencing) nor leases (spec.leases). Configure a fencing command that powers the host off, ` +
          'or leases on shared storage, or bring the host back',
      };
    }
    if (fencing?.state === 'Failed') {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'fencing_failed',
        message: `${failure}; fencing it failed (attempt ${fencing.attempts}: ${fencing.message}), retried; the VM is started elsewhere once the host is fenced`,
      };
    }
    return {
      go: false,
      reason: R.RecoveryPending,
      message: `${failure}; fencing it (${fencing?.message ?? 'about to start'}); the VM is started elsewhere once the host is fenced`,
    };
  }

  /**
   * Places the VM on another host of the pool, recording the move (written before anything is
   * made there). `proof`: the old copy is dead (fenced), or the new host's lock manager decides
   * at the start (lease; the restart is counted once it started).
   */
  placeElsewhere(
    vm: VmObject,
    pool: PoolObject,
    from: string,
    draft: VmStatusDraft,
    proof: 'fenced' | 'lease' = 'fenced',
  ): Placement | undefined {
    const uid = vm.metadata.uid ?? '';
    const poolName = pool.metadata.name ?? '';
    const result = this.placement.placeAwayFrom(vm, pool, from, `moved from failed host ${from}`, draft);
    const how =
      proof === 'fenced'
        ? 'failed and was fenced'
        : 'failed and was not fenced (no fencing command, or it failed); its leases decide: the VM starts only where the lock manager grants them';
    if (!result.placed) {
      draft.phase('Unknown');
      const message = `host ${from} ${how}, but no other host can take the VM: ${result.message}`;
      const before = draft.condition(C.Scheduled)?.message;
      draft.set(C.Scheduled, 'False', R.Unschedulable, message);
      draft.set(C.Ready, 'Unknown', R.RecoveryBlocked, message);
      if (before !== message) this.kit.event(vm, 'Warning', E.FailedScheduling, message);
      return undefined;
    }
    const { host, hypervisor } = result.placed;
    // A fresh start on the new host: no crash to count, no old definition to compare with.
    draft.phase('Provisioning');
    draft.set(C.Provisioned, 'False', R.Evacuating, `moving to ${host}: host ${from} ${how}`);
    const memory = this.kit.memory(vm);
    delete memory.defined;
    this.kit.crashes.forget(uid);
    memory.evacuatedAt = this.kit.options.fleet.host(poolName, from)?.verdict.notReadySince ?? this.kit.now();
    if (proof === 'fenced') {
      draft.status.restarts = (draft.status.restarts ?? 0) + 1;
      this.kit.options.metrics?.vmRestarts.inc({ ...this.kit.labels(vm), reason: 'host_failure' });
    }
    this.kit.event(vm, 'Warning', E.Evacuated, `host ${from} ${how}; starting the VM on ${host} (${result.why})`);
    return { host, hypervisor };
  }

  /** virtfleet_vm_recovery_blocked: 1 with the reason while the wait needs a person, absent otherwise. */
  reportBlocked(vm: VmObject, reason: string | undefined): void {
    const metrics = this.kit.options.metrics;
    if (!metrics) return;
    const memory = this.kit.memory(vm);
    const before = memory.blockedReason;
    if (before === reason) return;
    const labels = this.kit.labels(vm);
    if (before) metrics.vmRecoveryBlocked.remove({ ...labels, reason: before });
    if (reason) {
      metrics.vmRecoveryBlocked.set({ ...labels, reason }, 1);
      memory.blockedReason = reason;
    } else delete memory.blockedReason;
  }

  /** The VM is gone (deleted, or its finalizer removed by hand): its series goes with it. */
  forget(uid: string): void {
    const memory = this.kit.memories.peek(uid);
    if (memory?.blockedReason)
      this.kit.options.metrics?.vmRecoveryBlocked.remove({
        namespace: memory.namespace,
        name: memory.name,
        reason: memory.blockedReason,
      });
  }
}
