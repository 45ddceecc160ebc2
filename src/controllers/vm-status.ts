// The status a VirtualMachine reconcile computes: started from the cached status, changed by
// each step of the reconcile, compared and written once at the end (and once early, to record a
// placement before anything is made on the host). Conditions carry the object's generation.
import type { VirtualMachineCondition } from '../api/conditions.js';
import type { VirtualMachineStatus } from '../api/virtualmachine.js';
import { findCondition, setCondition, type Condition } from '../runtime/conditions.js';
import { vmKstatus, withKstatusConditions } from './kstatus.js';
import type { VmObject } from './resources.js';

export type Phase = NonNullable<VirtualMachineStatus['phase']>;
export type ConditionStatus = Condition['status'];

export class VmStatusDraft {
  status: VirtualMachineStatus;
  private readonly generation: number | undefined;

  constructor(
    vm: VmObject,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.status = structuredClone(vm.status ?? {});
    this.generation = vm.metadata.generation;
  }

  get conditions(): VirtualMachineCondition[] {
    return this.status.conditions ?? [];
  }

  condition(type: string): VirtualMachineCondition | undefined {
    return findCondition(this.conditions, type);
  }

  /** Sets a condition; returns true when its status (True/False/Unknown) changed or it is new. */
  set(type: string, status: ConditionStatus, reason: string, message: string): boolean {
    const before = this.condition(type);
    this.status.conditions = setCondition(
      this.conditions,
      { type, status, reason, message },
      this.generation,
      this.now(),
    );
    return before?.status !== status;
  }

  drop(type: string): void {
    this.status.conditions = this.conditions.filter((condition) => condition.type !== type);
  }

  phase(phase: Phase): void {
    this.status.phase = phase;
  }

  /**
   * The status to write: observedGeneration is the generation all of it was computed from, and
   * Reconciling or Stalled say what kstatus should make of the other conditions (kstatus.ts).
   */
  result(): VirtualMachineStatus {
    const verdict = vmKstatus(this.status.conditions);
    const conditions = withKstatusConditions(this.status.conditions, verdict, this.generation, this.now());
    this.status.conditions = conditions;
    return { ...this.status, observedGeneration: this.generation };
  }
}
