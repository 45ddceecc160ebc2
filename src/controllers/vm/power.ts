// Step: power. The domain runs, stops or pauses per spec.runStrategy, unless an operation
// (virtfleet.io/action: `virtfleet vm start|stop|restart|pause|unpause`) asks otherwise
// (vm-actions.ts decides, this step acts). Restarts after failures go through the crash back-off
// and are counted; a VM that ran before is started only when no host has it live (the copies
// step's guard). Writes Ready and the phase from the domain's state, lastAction of operations,
// status.restarts.
import { ignoring, type DomainStatus, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import { isActive, stopAction, stoppedByGuest, type PowerAction } from '../run-strategy.js';
import {
  ACTION_ANNOTATION,
  ACTION_ID_ANNOTATION,
  actionRequest,
  decideAction,
  isNewRequest,
  type ActionDecision,
  type VmAction,
} from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { CopiesStep } from './copies.js';
import type { VmKit } from './kit.js';
import { leaseConflict, type LeaseRecovery } from './lease-recovery.js';

export interface PowerOutcome {
  domain: DomainStatus;
  requeueAfterMs?: number;
  /** An operation holds the VM stopped or paused. */
  hold?: 'stop' | 'pause';
  /** A restart waits out its back-off: the state report and health probes stand aside. */
  backingOff?: boolean;
}

export class PowerStep {
  constructor(
    private readonly kit: VmKit,
    private readonly copies: CopiesStep,
    private readonly leases: LeaseRecovery,
  ) {}

  /** This process asked the guest to shut down and has not seen it stopped yet. */
  shutdownAsked(vm: VmObject): boolean {
    return this.kit.memory(vm).shutdownSince !== undefined;
  }

  async apply(
    vm: VmObject,
    pool: PoolObject,
    hostName: string,
    hypervisor: Hypervisor,
    domain: DomainStatus,
    draft: VmStatusDraft,
  ): Promise<PowerOutcome> {
    const uid = vm.metadata.uid ?? '';
    const memory = this.kit.memory(vm);
    const stopWasAsked = memory.shutdownSince !== undefined;
    const phaseBefore = draft.status.phase;
    if (!isActive(domain.state)) delete memory.shutdownSince;
    else this.leases.clear(vm);
    const parsed = actionRequest(vm.metadata.annotations);
    if (parsed && 'error' in parsed) this.refuseAnnotation(vm, draft, parsed.error);
    const request = parsed && !('error' in parsed) ? parsed : undefined;
    const decision = decideAction({
      request,
      last: draft.status.lastAction,
      strategy: vm.spec.runStrategy,
      domain,
      shutdownSince: memory.shutdownSince,
      now: this.kit.now(),
      graceMs: this.kit.graceMs,
    });
    if (decision.record) this.kit.recordAction(vm, draft, decision.record);
    const step = decision.power;
    if (step.action === 'none') return { domain, ...(decision.hold ? { hold: decision.hold } : {}) };
    const askedByUser =
      decision.record !== undefined && (decision.record.action === 'start' || decision.record.action === 'restart');
    const now = this.kit.now();
    if (step.action === 'start' && !askedByUser) {
      let pending = this.kit.crashes.pending(uid, now);
      if (!pending && !stopWasAsked && wasUp(phaseBefore)) {
        const verdict = this.kit.crashes.failure(uid, vm.spec.recovery.restartBackoff, now);
        this.countRestart(vm, draft, domain, verdict.delayMs);
        pending = {
          leftMs: verdict.delayMs,
          startAt: verdict.startAt,
          failures: verdict.failures,
          delayMs: verdict.delayMs,
        };
      }
      if (pending && pending.leftMs > 0) {
        const message =
          `the domain went down ${pending.failures} times in a row; next start in ${(pending.delayMs / 1000).toFixed(1)} s, at ${new Date(pending.startAt).toISOString()} ` +
          `(back-off doubles from ${vm.spec.recovery.restartBackoff.initialSeconds} s up to ${vm.spec.recovery.restartBackoff.maxSeconds} s; ` +
          "see the Events and the guest's console for why it stops)";
        draft.phase('CrashLoopBackOff');
        if (draft.set(C.Ready, 'False', R.CrashLoopBackOff, message))
          this.kit.event(vm, 'Warning', E.CrashLoopBackOff, message);
        return { domain, requeueAfterMs: pending.leftMs, backingOff: true };
      }
    }
    // A start refused for a lease held elsewhere waits for its next try (lease-recovery.ts).
    const leaseWait = step.action === 'start' && !askedByUser ? this.leases.waiting(vm, draft) : undefined;
    if (leaseWait !== undefined) return { domain, requeueAfterMs: leaseWait, backingOff: true };
    // Never a second copy: a VM that ran before is started only when no host has it live.
    if (step.action === 'start' && vm.status?.domainUUID) await this.copies.guardStart(vm, pool, hostName, draft);
    let requeueAfterMs: number | undefined;
    try {
      requeueAfterMs = await this.perform(vm, hypervisor, step);
    } catch (error) {
      // Another copy holds the VM's lease or a disk: it is alive. Not a crash: the VM waits.
      const conflict = step.action === 'start' ? leaseConflict(error) : undefined;
      if (conflict === undefined) throw error;
      const retry = this.leases.refused(vm, pool, hostName, conflict, draft);
      return { domain: await hypervisor.state(uid), requeueAfterMs: retry, backingOff: true };
    }
    if (step.action === 'start') this.leases.started(vm, pool, hostName, draft);
    let recoveredFrom: number | undefined;
    if (step.action === 'start') {
      draft.set(C.Ready, 'False', R.Starting, 'starting');
      recoveredFrom = this.kit.crashes.started(uid, now);
    }
    // Read back what the action did: the test driver and fast guests are already there.
    const after = await hypervisor.state(uid);
    if (recoveredFrom !== undefined && isActive(after.state))
      this.kit.options.metrics?.recoveryDuration.observe({ kind: 'crash' }, (this.kit.now() - recoveredFrom) / 1000);
    return {
      domain: after,
      ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
      ...(decision.hold ? { hold: decision.hold } : {}),
    };
  }

  /**
   * Toward a stopped domain (deletion): a graceful shutdown, destroyed after the grace period.
   * Undefined once it is stopped; otherwise the delay before looking again.
   */
  async stop(vm: VmObject, hypervisor: Hypervisor, domain: DomainStatus): Promise<number | undefined> {
    const memory = this.kit.memory(vm);
    if (!isActive(domain.state)) delete memory.shutdownSince;
    return this.perform(vm, hypervisor, stopAction(domain, memory.shutdownSince, this.kit.now(), this.kit.graceMs));
  }

  /** A malformed virtfleet.io/action annotation: said once in lastAction and an Event; nothing is done. */
  private refuseAnnotation(vm: VmObject, draft: VmStatusDraft, message: string): void {
    const id = vm.metadata.annotations?.[ACTION_ID_ANNOTATION]?.slice(0, 128) ?? '';
    const action = (vm.metadata.annotations?.[ACTION_ANNOTATION] ?? '').slice(0, 32);
    const last = draft.status.lastAction;
    if (!isNewRequest({ id, action }, last) && last?.state === 'Refused') return;
    this.kit.recordAction(vm, draft, { id, action: action as VmAction, state: 'Refused', message });
  }

  /** The domain went down without being asked (a crash, a kill, a guest power-off) and is started again. */
  private countRestart(vm: VmObject, draft: VmStatusDraft, domain: DomainStatus, delayMs: number): void {
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    const when = delayMs > 0 ? `in ${(delayMs / 1000).toFixed(1)} s` : 'now';
    this.kit.event(
      vm,
      'Warning',
      E.Restarted,
      `domain ${domain.name} stopped without being asked (${domain.state}, ${domain.reason}); starting it again ${when} per runStrategy ${vm.spec.runStrategy} (restart ${draft.status.restarts})`,
    );
    this.kit.options.metrics?.vmRestarts.inc({ ...this.kit.labels(vm), reason: 'crash' });
  }

  /** Performs one power step; returns the delay before looking again when one is under way. */
  private async perform(
    vm: VmObject,
    hypervisor: Hypervisor,
    step: PowerAction | ActionDecision['power'],
  ): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const memory = this.kit.memory(vm);
    switch (step.action) {
      case 'none':
        return undefined;
      case 'suspend':
        await ignoring(['invalid-state'], () => hypervisor.suspend(uid));
        this.kit.event(vm, 'Normal', E.Paused, `paused on ${hypervisor.uri}`);
        return undefined;
      case 'resume':
        await ignoring(['invalid-state'], () => hypervisor.resume(uid));
        this.kit.event(vm, 'Normal', E.Resumed, `resumed on ${hypervisor.uri}`);
        return undefined;
      case 'start':
        await ignoring(['invalid-state'], () => hypervisor.start(uid));
        this.kit.note(vm, E.Started, `started on ${hypervisor.uri}`);
        return undefined;
      case 'shutdown':
        // The stopped event brings the VM back sooner; the requeue enforces the grace period.
        await ignoring(['invalid-state', 'not-found'], () => hypervisor.shutdown(uid));
        memory.shutdownSince = this.kit.now();
        this.kit.event(
          vm,
          'Normal',
          E.ShuttingDown,
          `asked the guest to shut down; destroyed if still running after ${step.recheckMs / 1000} s`,
        );
        return step.recheckMs;
      case 'wait':
        return step.recheckMs;
      case 'destroy':
        await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
        delete memory.shutdownSince;
        this.kit.event(
          vm,
          'Warning',
          E.Destroyed,
          `the guest did not shut down within ${this.kit.graceMs / 1000} s; destroyed`,
        );
        return undefined;
    }
  }

  /**
   * Ready and phase from the domain's state (and from an operation that holds it stopped or
   * paused). A VM stopped or paused because its runStrategy or a hold says so is as asked:
   * Ready=True with reason Stopped, StoppedByUser or PausedByUser (kstatus reads it as Current).
   */
  reportState(vm: VmObject, domain: DomainStatus, draft: VmStatusDraft, hold: 'stop' | 'pause' | undefined): void {
    const name = vm.metadata.name ?? '';
    switch (domain.state) {
      case 'running':
      case 'blocked': {
        draft.phase('Running');
        draft.set(C.Ready, 'True', R.Running, `domain ${domain.name} is running`);
        const memory = this.kit.memory(vm);
        const failedAt = memory.evacuatedAt;
        if (failedAt !== undefined) {
          delete memory.evacuatedAt;
          this.kit.options.metrics?.recoveryDuration.observe({ kind: 'host' }, (this.kit.now() - failedAt) / 1000);
        }
        return;
      }
      case 'paused':
      case 'pmsuspended':
        draft.phase('Paused');
        if (hold === 'pause') {
          draft.set(
            C.Ready,
            'True',
            R.PausedByUser,
            `paused on request (${ACTION_ANNOTATION}=pause); \`virtfleet vm unpause ${name}\` resumes it`,
          );
        } else {
          draft.set(C.Ready, 'False', R.Paused, `domain ${domain.name} is paused (${domain.reason})`);
        }
        return;
      case 'shutdown':
        draft.phase('Running');
        draft.set(C.Ready, 'False', R.ShuttingDown, `domain ${domain.name} is shutting down`);
        return;
      default:
        draft.phase('Stopped');
        if (hold === 'stop') {
          draft.set(
            C.Ready,
            'True',
            R.StoppedByUser,
            `stopped on request (${ACTION_ANNOTATION}=stop); \`virtfleet vm start ${name}\` starts it again`,
          );
        } else if (vm.spec.runStrategy === 'Manual') {
          draft.set(
            C.Ready,
            'True',
            R.Stopped,
            `domain ${domain.name} is ${domain.state} (${domain.reason}); runStrategy Manual: \`virtfleet vm start ${name}\` starts it`,
          );
        } else if (vm.spec.runStrategy === 'Halted') {
          draft.set(C.Ready, 'True', R.Stopped, `domain ${domain.name} is ${domain.state}, as runStrategy Halted asks`);
        } else if (vm.spec.runStrategy === 'RerunOnFailure' && stoppedByGuest(domain)) {
          draft.set(
            C.Ready,
            'True',
            R.Stopped,
            `the guest powered itself off; runStrategy RerunOnFailure leaves it stopped: \`virtfleet vm start ${name}\` starts it`,
          );
        } else {
          draft.set(C.Ready, 'False', R.Stopped, `domain ${domain.name} is ${domain.state} (${domain.reason})`);
        }
    }
  }

  forget(uid: string): void {
    this.kit.crashes.forget(uid);
  }
}

/** The VM was up when last seen: a stop now was not its first state. */
function wasUp(phase: string | undefined): boolean {
  return phase === 'Running' || phase === 'Paused' || phase === 'CrashLoopBackOff';
}
