// What every step of the VM reconciler shares: the controller's options and timings, the clock,
// per-VM memory, and the three things steps do besides their own job — record an Event, record
// the outcome of an operation (status.lastAction), write status.
import type { EventType } from '../../runtime/events.js';
import { objectKey } from '../../runtime/informer.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { VIRTUAL_MACHINE, type VmObject } from '../resources.js';
import { ACTION_ID_ANNOTATION, type ActionDecision } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import { VM_EVENTS as E } from '../reasons.js';
import { CrashBackoff } from '../crash-backoff.js';
import { VmMemories, type VmMemory } from './memory.js';
import type { VirtualMachineControllerOptions } from './options.js';

export type ActionRecord = NonNullable<ActionDecision['record']>;

/** Ends a reconcile early with the status computed so far (and maybe a requeue). */
export class Halt {
  constructor(readonly requeueAfterMs?: number) {}
}

export class VmKit {
  readonly memories = new VmMemories();
  /** Restarts after failures and their back-off: counted by power, health probes and recovery alike. */
  readonly crashes = new CrashBackoff();
  readonly graceMs: number;
  readonly hostRetryMs: number;
  readonly addressRetryMs: number;
  readonly now: () => number;

  constructor(readonly options: VirtualMachineControllerOptions) {
    this.graceMs = options.shutdownGraceMs ?? 60_000;
    this.hostRetryMs = options.hostRetryMs ?? 30_000;
    this.addressRetryMs = options.addressRetryMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  memory(vm: VmObject): VmMemory {
    return this.memories.of(vm.metadata.uid ?? '', objectKey(vm), vm.metadata.namespace ?? '', vm.metadata.name ?? '');
  }

  /** Events are best effort (the recorder never throws) and must not slow the reconcile. */
  event(vm: VmObject, type: EventType, reason: string, message: string): void {
    void this.options.events.record(vm, type, reason, message);
  }

  /**
   * A step of the reconcile under way worth a Normal Event, told together with the reconcile's
   * other such steps in one Event when it ends (flushNotes): a new VM placed, defined and started
   * in one reconcile is one Event, not three (bench/scale: Events were half the API writes of a
   * burst), and the Event still says each step.
   */
  note(vm: VmObject, reason: string, message: string): void {
    (this.memory(vm).notes ??= []).push({ reason, message });
  }

  /** The reconcile's notes as one Event: the furthest step's reason, every step's message in order. */
  flushNotes(vm: VmObject): void {
    const memory = this.memories.peek(vm.metadata.uid ?? '');
    const notes = memory?.notes;
    if (!memory || !notes?.length) return;
    delete memory.notes;
    this.event(vm, 'Normal', notes.at(-1)!.reason, notes.map((note) => note.message).join('; '));
  }

  /** status.lastAction, and an Event saying what became of the operation. */
  recordAction(vm: VmObject, draft: VmStatusDraft, record: ActionRecord): void {
    draft.status.lastAction = { ...record, time: new Date(this.now()).toISOString() };
    const what = `${record.action} (${ACTION_ID_ANNOTATION}=${record.id})`;
    if (record.state === 'Refused') this.event(vm, 'Warning', E.ActionRefused, `${what} refused: ${record.message}`);
    else if (record.state === 'InProgress') this.event(vm, 'Normal', E.ActionStarted, `${what}: ${record.message}`);
    else this.event(vm, 'Normal', E.ActionDone, `${what}: ${record.message}`);
  }

  /** Writes the draft if it differs from `vm`'s status; returns the object as it now stands. */
  async writeStatus(vm: VmObject, draft: VmStatusDraft): Promise<VmObject> {
    const status = draft.result();
    this.memory(vm).written = structuredClone(status);
    await patchStatusIfChanged(
      this.options.client,
      VIRTUAL_MACHINE,
      vm as VmObject & { status?: Record<string, unknown> },
      status as Record<string, unknown>,
    );
    return { ...vm, status };
  }

  /** The labels of a VM's own metric series. */
  labels(vm: VmObject): { namespace: string; name: string } {
    return { namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '' };
  }
}

/** The smallest of the defined values. */
export function minDefined(...values: Array<number | undefined>): number | undefined {
  const defined = values.filter((value): value is number => value !== undefined);
  return defined.length > 0 ? Math.min(...defined) : undefined;
}
