// Recovery by lease: a VM of a failed host, in a pool with spec.leases and no fencing command
// (or one that failed), is started on another host and the lock manager decides. The start is
// the proof, made by the one party that can know: the new host's virtlockd grants the VM's lease
// (and, with auto_disk_leases, its disks' leases) only when no process holds them, and a running
// copy on the old host holds them for as long as its QEMU lives. Granted: the old copy is gone
// (its QEMU exited, or the host's lock holder died with the host), said in a LeaseAcquired
// Event. Refused: the old copy is alive (a host only cut off from the controller); the VM waits
// with RecoveryBlocked saying what would free it, and the start is tried again later. The QEMU
// made for a refused start never runs the guest: libvirt takes the leases before it starts the
// CPUs (QEMU's own image locking may refuse the disk even earlier, when it opens it).
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import { FAILED_HOST_REASONS } from '../pool-status.js';
import type { PoolObject, VmObject } from '../resources.js';
import { leaseKey } from '../vm-domain.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';

/** Tries after a refusal: 10 s, doubling, at most 2 min. */
export function leaseRetryMs(refusals: number): number {
  return Math.min(10_000 * 2 ** Math.max(0, refusals - 1), 120_000);
}

/**
 * The line of a start's error that says another process holds one of the domain's leases or
 * disks: virtlockd's "resource busy: Lockspace resource … is locked" (VIR_ERR_RESOURCE_BUSY), or
 * QEMU's own image lock ("Failed to get "write" lock … Is another process using the image"), which
 * on storage with coherent locks refuses a disk another QEMU has open. Undefined for any other
 * failure (those are not evidence of a live copy).
 */
export function leaseConflict(error: unknown): string | undefined {
  const text = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
  // From the words that say it: QEMU's line comes after a long command-line fragment.
  const at = text.search(/resource busy|Lockspace resource \S+ is locked|Failed to get "\w+" lock/);
  if (at < 0) return undefined;
  const said = text.slice(at).trim();
  return said.length > 300 ? `${said.slice(0, 300)}…` : said;
}

/**
 * What a controller before this one wrote about a recovery by lease under way, read back from the
 * VM's status after a restart (this process's memory is gone): the move's Provisioned=Evacuating
 * message, or a refused start's RecoveryBlocked one. Undefined when status shows none.
 */
export function recalled(
  conditions: ReadonlyArray<{ type: string; reason?: string; message?: string }> | undefined,
): { from: string; refusals: number } | undefined {
  const of = (type: string) => conditions?.find((c) => c.type === type);
  const ready = of(C.Ready);
  if (ready?.reason === R.RecoveryBlocked) {
    const refused = /so the old copy on (\S+) is alive .* Tried (\d+) times?;/.exec(ready.message ?? '');
    if (refused) return { from: refused[1]!, refusals: Number(refused[2]) };
  }
  const provisioned = of(C.Provisioned);
  if (provisioned?.reason === R.Evacuating) {
    const moved = /^moving to \S+: host (\S+) failed and was not fenced/.exec(provisioned.message ?? '');
    if (moved) return { from: moved[1]!, refusals: 0 };
  }
  return undefined;
}

export class LeaseRecovery {
  constructor(private readonly kit: VmKit) {}

  /** The VM is moved off `from` to be tried elsewhere: remembered for the evidence and the messages. */
  trying(vm: VmObject, from: string, failedAt: number): void {
    this.kit.memory(vm).leaseRecovery = { from, failedAt, refusals: 0 };
  }

  /**
   * Before a start: when a refused start waits for its next try, the VM stays RecoveryBlocked and
   * this says when to look again; undefined when the start may be tried.
   */
  waiting(vm: VmObject, draft: VmStatusDraft): number | undefined {
    const state = this.kit.memory(vm).leaseRecovery;
    if (state?.retryAt === undefined) return undefined;
    // The old host answers again: the start's guard sees its copy running and adopts it there.
    if (state.from && this.kit.options.fleet.host(vm.spec.hostPoolRef.name, state.from)?.verdict.readiness.ready)
      return undefined;
    const left = state.retryAt - this.kit.now();
    if (left <= 0) return undefined;
    draft.phase('Unknown');
    if (state.message) draft.set(C.Ready, 'Unknown', R.RecoveryBlocked, state.message);
    return left;
  }

  /** A start on `host` was refused for a held lease (`conflict`): the VM waits; returns when to try again. */
  refused(vm: VmObject, pool: PoolObject, host: string, conflict: string, draft: VmStatusDraft): number {
    const memory = this.kit.memory(vm);
    const state = memory.leaseRecovery ?? recalled((memory.written ?? vm.status)?.conditions) ?? { refusals: 0 };
    const refusals = state.refusals + 1;
    const delay = leaseRetryMs(refusals);
    const poolName = pool.metadata.name ?? '';
    // Without memory (a controller restart), the suspects are the pool's failed hosts.
    const suspects = state.from
      ? [state.from]
      : this.kit.options.fleet
          .hosts(poolName)
          .filter((h) => !h.verdict.readiness.ready && FAILED_HOST_REASONS.has(h.verdict.readiness.reason ?? ''))
          .map((h) => h.name);
    const where = suspects.length > 0 ? `on ${suspects.join(' or ')}` : 'on another host';
    const fencing = suspects.map((name) => `spec.hosts[${name}].fencing`).join(', ') || 'spec.hosts[].fencing';
    const message =
      `the VM is not started on ${host}: the start was refused because its leases or disks are held (${conflict}), so the old copy ${where} is alive ` +
      `and holds them (its host is cut off, not dead). It starts on ${host} once they are free: when that QEMU exits or its host ` +
      `is powered off (a fencing command, HostPool ${poolName} ${fencing}, would do it); if the host answers again, the VM stays ` +
      `where it runs. Tried ${refusals} time${refusals > 1 ? 's' : ''}; next try in ${delay / 1000} s`;
    memory.leaseRecovery = { ...state, refusals, retryAt: this.kit.now() + delay, message };
    draft.phase('Unknown');
    if (draft.set(C.Ready, 'Unknown', R.RecoveryBlocked, message)) this.kit.event(vm, 'Warning', E.LeaseHeld, message);
    return delay;
  }

  /**
   * A start on `host` succeeded for a VM tried by lease: the evidence goes into an Event, and the
   * restart is counted now (not at the move: a refused VM that stays on its old host never restarted).
   */
  started(vm: VmObject, pool: PoolObject, host: string, draft: VmStatusDraft): void {
    const memory = this.kit.memory(vm);
    const state = memory.leaseRecovery ?? recalled((memory.written ?? vm.status)?.conditions);
    if (!state) return;
    delete memory.leaseRecovery;
    const disks = vm.spec.disks?.length ?? 0;
    const leases = `the VM's lease ${leaseKey(vm.metadata.uid ?? '')}${disks > 0 ? ` and its ${disks === 1 ? "disk's lease" : `${disks} disks' leases`}` : ''}`;
    const from = state.from ? `host ${state.from}` : 'the failed host';
    const before = state.refusals > 0 ? ` (refused ${state.refusals} time${state.refusals > 1 ? 's' : ''} before)` : '';
    this.kit.event(
      vm,
      'Normal',
      E.LeaseAcquired,
      `started on ${host}: its lock manager granted ${leases} in lockspace ${pool.spec.leases?.lockspace ?? '?'}${before}. ` +
        `A copy running on ${from} would hold them, so no process there holds them any more: the old copy is gone`,
    );
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    this.kit.options.metrics?.vmRestarts.inc({ ...this.kit.labels(vm), reason: 'host_failure' });
  }

  /** The VM runs (started, or found running where it was): no lease wait any more. */
  clear(vm: VmObject): void {
    const memory = this.kit.memory(vm);
    delete memory.leaseRecovery;
  }

  /** The reason label of virtfleet_vm_recovery_blocked while a refused start waits. */
  blockedMetric(vm: VmObject): 'lease_held' | undefined {
    return this.kit.memory(vm).leaseRecovery?.retryAt !== undefined ? 'lease_held' : undefined;
  }
}
