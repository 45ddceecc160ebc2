// Reconciling and Stalled, the two conditions kstatus (sigs.k8s.io/cli-utils pkg/kstatus) reads
// before Ready, derived from the conditions each controller already wrote. kstatus computes:
//   status.observedGeneration behind metadata.generation → InProgress
//   Reconciling=True → InProgress;  Stalled=True → Failed
//   otherwise Ready=True → Current, Ready=False or Unknown → InProgress
// So an object that is as its spec asks has Ready=True and neither of the two; one the
// controller is still working on has Reconciling=True (the reason and message of Ready); one
// that waits for a person has Stalled=True. Both are "abnormal-true": absent when they do not
// hold, so a settled object carries neither and a steady reconcile writes nothing.
import type { Condition, ObservedCondition } from '../runtime/conditions.js';
import { findCondition, setCondition } from '../runtime/conditions.js';
import { HOST_REASONS, INSTALL_PROFILE_REASONS, POOL_REASONS, VM_CONDITIONS, VM_REASONS as R } from './reasons.js';

export const KSTATUS_CONDITIONS = {
  /** True while the controller works towards the spec (kstatus: InProgress). */
  Reconciling: 'Reconciling',
  /** True while the object waits for a person: the spec or the world must change (kstatus: Failed). */
  Stalled: 'Stalled',
} as const;

/** What an object's conditions say for kstatus: stalled (with why), still reconciling, or done. */
export type KstatusVerdict =
  | { kind: 'stalled'; reason: string; message: string }
  | { kind: 'reconciling'; reason: string; message: string }
  | { kind: 'done' };

/**
 * Sets or drops Reconciling and Stalled by the verdict; other conditions are kept as they are.
 * observedGeneration and lastTransitionTime follow setCondition's rules.
 */
export function withKstatusConditions<C extends ObservedCondition>(
  conditions: readonly C[] | undefined,
  verdict: KstatusVerdict,
  generation: number | undefined,
  now: Date,
): (C | Condition)[] {
  const others = (conditions ?? []).filter(
    (condition) => condition.type !== KSTATUS_CONDITIONS.Reconciling && condition.type !== KSTATUS_CONDITIONS.Stalled,
  );
  if (verdict.kind === 'done') return others;
  const type = verdict.kind === 'stalled' ? KSTATUS_CONDITIONS.Stalled : KSTATUS_CONDITIONS.Reconciling;
  // Set on the old list (to keep its lastTransitionTime), then put after the others.
  const set = setCondition(
    conditions,
    { type, status: 'True', reason: verdict.reason, message: verdict.message },
    generation,
    now,
  );
  return [...others, findCondition(set, type)!];
}

// ---- VirtualMachine -------------------------------------------------------------------------

/** Installed=False reasons of an install that failed and is held until `virtfleet vm restart`. */
const INSTALL_HELD: ReadonlySet<string> = new Set([R.InstallFailed, R.InstallTimedOut]);

/**
 * A VM waits for a person when its definition cannot be used (Provisioned InvalidDefinition), no
 * host of its pool can take it (Scheduled Unschedulable), its recovery is blocked (Ready
 * RecoveryBlocked: no fencing, disks not shared, fencing failing, the old copy holding the
 * leases), or its install failed and is held. Otherwise it is reconciling until Ready=True, or
 * while a migration runs.
 */
export function vmKstatus(conditions: readonly ObservedCondition[] | undefined): KstatusVerdict {
  const find = (type: string) => findCondition(conditions, type);
  const scheduled = find(VM_CONDITIONS.Scheduled);
  const provisioned = find(VM_CONDITIONS.Provisioned);
  const installed = find(VM_CONDITIONS.Installed);
  const ready = find(VM_CONDITIONS.Ready);
  const stalled = (condition: ObservedCondition): KstatusVerdict => ({
    kind: 'stalled',
    reason: condition.reason,
    message: `${condition.type}: ${condition.message ?? ''}`,
  });
  if (provisioned?.status === 'False' && provisioned.reason === R.InvalidDefinition) return stalled(provisioned);
  if (provisioned?.status === 'False' && provisioned.reason === R.TemplateInvalid) return stalled(provisioned);
  if (scheduled?.status === 'False' && scheduled.reason === R.Unschedulable) return stalled(scheduled);
  if (ready && ready.status !== 'True' && ready.reason === R.RecoveryBlocked) return stalled(ready);
  if (installed?.status === 'False' && INSTALL_HELD.has(installed.reason)) return stalled(installed);
  if (!ready) return { kind: 'reconciling', reason: 'Pending', message: 'not reconciled yet' };
  if (ready.status !== 'True')
    return { kind: 'reconciling', reason: ready.reason, message: `Ready: ${ready.message ?? ''}` };
  const migrating = find(VM_CONDITIONS.Migrating);
  if (migrating?.status === 'True')
    return { kind: 'reconciling', reason: migrating.reason, message: `Migrating: ${migrating.message ?? ''}` };
  return { kind: 'done' };
}

// ---- InstallProfile -------------------------------------------------------------------------

/**
 * An InstallProfile is Ready when it is Valid. An invalid one waits for a person (its spec or a
 * Secret's value must change), except a Secret not found, which it looks for again every 30 s:
 * that one is reconciling (a Secret applied after the profile is found by itself).
 */
export function profileKstatus(
  valid: Pick<ObservedCondition, 'status' | 'reason' | 'message'> | undefined,
): KstatusVerdict {
  if (!valid) return { kind: 'reconciling', reason: 'Pending', message: 'not checked yet' };
  if (valid.status === 'True') return { kind: 'done' };
  const message = `Valid: ${valid.message ?? ''}`;
  if (valid.reason === INSTALL_PROFILE_REASONS.SecretNotFound)
    return { kind: 'reconciling', reason: valid.reason, message };
  return { kind: 'stalled', reason: valid.reason, message };
}

// ---- HostPool -------------------------------------------------------------------------------

/** Host reasons no retry gets past: the HostPool's spec, or a Secret's content, must change. */
const HOST_NEEDS_A_PERSON: ReadonlySet<string> = new Set([
  HOST_REASONS.HypervisorMismatch,
  HOST_REASONS.CredentialsNamespaceNotAllowed,
  HOST_REASONS.CredentialsInvalid,
]);

/**
 * A HostPool is done when a host is ready and no drain is under way. With no host ready it
 * waits for a person when it has no hosts or every host is refused for its declaration or its
 * credentials; otherwise (connecting, unreachable, a Secret not found yet) it is reconciling.
 */
export function poolKstatus(
  ready: ObservedCondition | undefined,
  notReady: ReadonlyArray<{ reason?: string }>,
  hostCount: number,
  maintenance: ObservedCondition | undefined,
): KstatusVerdict {
  if (!ready) return { kind: 'reconciling', reason: 'Pending', message: 'not reconciled yet' };
  const message = `Ready: ${ready.message ?? ''}`;
  if (ready.status !== 'True') {
    const refused = notReady.every((host) => HOST_NEEDS_A_PERSON.has(host.reason ?? ''));
    if (hostCount === 0 || refused) return { kind: 'stalled', reason: ready.reason, message };
    return { kind: 'reconciling', reason: ready.reason, message };
  }
  if (maintenance?.status === 'True' && maintenance.reason === POOL_REASONS.Draining)
    return { kind: 'reconciling', reason: maintenance.reason, message: `Maintenance: ${maintenance.message ?? ''}` };
  return { kind: 'done' };
}
