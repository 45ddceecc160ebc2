// Operations a user asks of one VM (`virtfleet vm start|stop|restart|pause|unpause|suspend|resume`),
// as two annotations rather than a spec change or a subresource:
//
//   virtfleet.io/action:    start | stop | restart | pause | unpause | suspend | resume
//   virtfleet.io/action-id: any string that differs from the last request's (the CLI writes a
//                           timestamp and a random suffix)
//
// Why annotations: the spec is what Git holds. An operation that rewrote spec.runStrategy (as
// `virtctl stop` does) would be reverted by the next sync of Argo CD or Flux, or would make the
// cluster drift from Git; annotations that the manifest does not set are left alone by
// `kubectl apply` (client-side and server-side) and are easy to tell a GitOps tool to ignore. An
// aggregated-API subresource would need an extension API server, which virtfleet does not run.
//
// Meaning: stop, pause and suspend are holds — they last while the annotation says so, whatever the
// runStrategy (Always does not restart a VM its user stopped); start, restart, unpause and resume are done
// once per action-id, after which runStrategy governs again. status.lastAction records the id and
// what came of it, so a request is done once even across controller restarts.
//
// Pure: the reconciler performs what `decideAction` returns.
import type { VirtualMachineStatus } from '../api/virtualmachine.js';
import type { DomainStatus } from '../hypervisors/hypervisor.js';
import { isActive, powerAction, stopAction, type PowerAction, type RunStrategy } from './run-strategy.js';

export const ACTION_ANNOTATION = 'virtfleet.io/action';
export const ACTION_ID_ANNOTATION = 'virtfleet.io/action-id';
export const VM_ACTIONS = ['start', 'stop', 'restart', 'pause', 'unpause', 'migrate', 'suspend', 'resume'] as const;
/** With action migrate: the host to migrate to (a name in the HostPool); unset: the scheduler chooses. */
export const MIGRATE_TO_ANNOTATION = 'virtfleet.io/migrate-to';

/**
 * The operation that holds the VM stopped, paused or suspended (`vm stop`, `vm pause`,
 * `vm suspend`) until lifted, if any.
 */
export function heldBy(annotations: Record<string, string> | undefined): 'stop' | 'pause' | 'suspend' | undefined {
  const action = annotations?.[ACTION_ANNOTATION];
  return action === 'stop' || action === 'pause' || action === 'suspend' ? action : undefined;
}
export type VmAction = (typeof VM_ACTIONS)[number];

export type LastAction = NonNullable<VirtualMachineStatus['lastAction']>;
export type ActionState = LastAction['state'];

export interface ActionRequest {
  action: VmAction;
  id: string;
}

/** What the annotations ask, or an error naming the annotation and the fix. */
export function actionRequest(
  annotations: Record<string, string> | undefined,
): ActionRequest | { error: string } | undefined {
  const action = annotations?.[ACTION_ANNOTATION];
  if (action === undefined) return undefined;
  if (!(VM_ACTIONS as readonly string[]).includes(action)) {
    return {
      error: `annotation ${ACTION_ANNOTATION}=${JSON.stringify(action.slice(0, 40))} is not one of ${VM_ACTIONS.join(', ')}; fix or remove it`,
    };
  }
  // Without an id, the action itself is the id: done once until an id is added.
  const id = annotations?.[ACTION_ID_ANNOTATION] ?? action;
  if (id.length > 128)
    return { error: `annotation ${ACTION_ID_ANNOTATION} is longer than 128 characters; use a shorter id` };
  return { action: action as VmAction, id };
}

/**
 * Whether a request is new: status.lastAction does not record its id for its action. A request
 * that is not new has been taken up already (done, refused, or under way).
 */
export function isNewRequest(request: { id: string; action: string }, last: LastAction | undefined): boolean {
  return last?.id !== request.id || last.action !== request.action;
}

/** The power step for this reconcile, plus what to record in status.lastAction (if anything). */
export interface ActionDecision {
  power: PowerAction | { action: 'suspend' } | { action: 'resume' };
  /** The new status.lastAction; undefined when it stays as it is. */
  record?: { id: string; action: VmAction; state: ActionState; message: string };
  /** A hold is in force: the Ready message should say so. */
  hold?: 'stop' | 'pause';
}

export interface ActionInput {
  request: ActionRequest | undefined;
  last: LastAction | undefined;
  strategy: RunStrategy;
  domain: Pick<DomainStatus, 'state' | 'reason'>;
  shutdownSince: number | undefined;
  now: number;
  graceMs: number;
}

const paused = (state: DomainStatus['state']) => state === 'paused' || state === 'pmsuspended';

/**
 * The power step for the VM: the runStrategy's, unless an operation asks otherwise. A request
 * whose id differs from status.lastAction.id is new; one whose id matches is done (or, for a
 * restart, under way).
 */
export function decideAction(input: ActionInput): ActionDecision {
  const { request, last, strategy, domain, shutdownSince, now, graceMs } = input;
  const byStrategy = (): ActionDecision => ({ power: powerAction(strategy, domain, shutdownSince, now, graceMs) });
  if (!request) return byStrategy();
  const isNew = isNewRequest(request, last);
  const record = (state: ActionState, message: string) => ({ id: request.id, action: request.action, state, message });

  switch (request.action) {
    case 'stop': {
      const step = stopAction(domain, shutdownSince, now, graceMs);
      if (step.action === 'none') {
        return {
          power: step,
          hold: 'stop',
          ...(isNew || last?.state !== 'Succeeded'
            ? { record: record('Succeeded', 'stopped; it stays stopped until `virtfleet vm start`') }
            : {}),
        };
      }
      return { power: step, hold: 'stop', ...(isNew ? { record: record('InProgress', 'shutting down') } : {}) };
    }
    case 'pause': {
      if (paused(domain.state)) {
        return {
          power: { action: 'none' },
          hold: 'pause',
          ...(isNew || last?.state !== 'Succeeded'
            ? { record: record('Succeeded', 'paused; it stays paused until `virtfleet vm unpause`') }
            : {}),
        };
      }
      if (isActive(domain.state))
        return {
          power: { action: 'suspend' },
          hold: 'pause',
          ...(isNew ? { record: record('InProgress', 'pausing') } : {}),
        };
      if (!isNew) return byStrategy();
      return {
        ...byStrategy(),
        record: record('Refused', `the VM is not running (domain ${domain.state}); pause applies to a running VM`),
      };
    }
    case 'suspend':
      // The suspend step (vm/suspend.ts) saves the VM and reports it; power stands aside.
      return { power: { action: 'none' } };
    case 'start':
    case 'resume':
    case 'unpause':
    case 'restart':
      break;
  }

  // One-shot actions: done once per id, after which runStrategy governs.
  const done = !isNew && (last?.state === 'Succeeded' || last?.state === 'Refused' || last?.state === 'Failed');
  if (request.action === 'migrate') {
    // The reconciler runs the migration and records its end; here only whether it may begin.
    if (done || !isNew) return byStrategy();
    if (!isActive(domain.state))
      return {
        ...byStrategy(),
        record: record('Refused', `the VM is not running (domain ${domain.state}); live migration moves a running VM`),
      };
    return { ...byStrategy(), record: record('InProgress', 'migration asked') };
  }
  if (done) return byStrategy();
  if (strategy === 'Halted' && request.action !== 'unpause') {
    return {
      ...byStrategy(),
      record: record(
        'Refused',
        `runStrategy Halted keeps the VM stopped: set spec.runStrategy to Always or Manual in its manifest to ${request.action} it`,
      ),
    };
  }
  switch (request.action) {
    case 'resume': // a start resumes from the managed-save image `vm suspend` left
    case 'start':
      if (paused(domain.state))
        return { power: { action: 'resume' }, record: record('Succeeded', 'resumed the paused VM') };
      if (isActive(domain.state)) return { power: { action: 'none' }, record: record('Succeeded', 'already running') };
      return { power: { action: 'start' }, record: record('Succeeded', 'started') };
    case 'unpause':
      if (paused(domain.state)) return { power: { action: 'resume' }, record: record('Succeeded', 'resumed') };
      return { ...byStrategy(), record: record('Succeeded', 'was not paused') };
    case 'restart': {
      // Cold restart (shut down, then start): the guest comes back on its current definition,
      // which also applies changes that waited for a restart.
      if (isActive(domain.state)) {
        const step = stopAction(domain, shutdownSince, now, graceMs);
        return {
          power: step,
          ...(isNew ? { record: record('InProgress', 'shutting down; starts again once stopped') } : {}),
        };
      }
      return { power: { action: 'start' }, record: record('Succeeded', isNew ? 'was stopped; started' : 'restarted') };
    }
  }
}
