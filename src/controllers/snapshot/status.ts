// The status of a snapshot and of a restore from what the reconcile found: phase, readyToUse,
// Ready with its reason, and Reconciling or Stalled for kstatus (kstatus.ts). Pure: the reconciler
// decides, these only write it down.
import type { RestorePhase, RestoreVmEntry, VirtualMachineRestoreStatus } from '../../api/virtualmachinerestore.js';
import type { SnapshotPhase, SnapshotVmEntry, VirtualMachineSnapshotStatus } from '../../api/virtualmachinesnapshot.js';
import { setCondition } from '../../runtime/conditions.js';
import { withKstatusConditions, type KstatusVerdict } from '../kstatus.js';
import { READY } from './types.js';

export interface Outcome<P extends string> {
  phase: P;
  reason: string;
  message: string;
}

/** Failed waits for a person (Stalled); Pending and InProgress are being worked on (Reconciling). */
function verdict(phase: string, done: boolean, reason: string, message: string): KstatusVerdict {
  if (done) return { kind: 'done' };
  if (phase === 'Failed') return { kind: 'stalled', reason, message: `${READY}: ${message}` };
  return { kind: 'reconciling', reason, message: `${READY}: ${message}` };
}

export function snapshotStatus(
  previous: VirtualMachineSnapshotStatus | undefined,
  generation: number | undefined,
  outcome: Outcome<SnapshotPhase> & { vms?: SnapshotVmEntry[]; cut?: VirtualMachineSnapshotStatus['cut'] },
  now: Date,
): VirtualMachineSnapshotStatus {
  const done = outcome.phase === 'Ready';
  let conditions = setCondition(
    previous?.conditions,
    { type: READY, status: done ? 'True' : 'False', reason: outcome.reason, message: outcome.message },
    generation,
    now,
  );
  conditions = withKstatusConditions(
    conditions,
    verdict(outcome.phase, done, outcome.reason, outcome.message),
    generation,
    now,
  );
  const status: VirtualMachineSnapshotStatus = { phase: outcome.phase, readyToUse: done, conditions };
  const vms = outcome.vms ?? previous?.vms;
  if (vms) status.vms = vms;
  const cut = outcome.cut ?? previous?.cut;
  if (cut) status.cut = cut;
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}

export function restoreStatus(
  previous: VirtualMachineRestoreStatus | undefined,
  generation: number | undefined,
  outcome: Outcome<RestorePhase> & { vms?: RestoreVmEntry[]; completionTime?: string },
  now: Date,
): VirtualMachineRestoreStatus {
  const done = outcome.phase === 'Succeeded';
  let conditions = setCondition(
    previous?.conditions,
    { type: READY, status: done ? 'True' : 'False', reason: outcome.reason, message: outcome.message },
    generation,
    now,
  );
  conditions = withKstatusConditions(
    conditions,
    verdict(outcome.phase, done, outcome.reason, outcome.message),
    generation,
    now,
  );
  const status: VirtualMachineRestoreStatus = { phase: outcome.phase, conditions };
  const vms = outcome.vms ?? previous?.vms;
  if (vms) status.vms = vms;
  const completionTime = outcome.completionTime ?? previous?.completionTime;
  if (completionTime) status.completionTime = completionTime;
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}

/** "a, b and c" (VM names in messages). */
export function listed(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
}
