// What runStrategy asks of a domain in a given state (KubeVirt's meanings). Pure: the
// VirtualMachine controller performs the action; time-based steps come back as a requeue.
import type { DomainStatus } from '../hypervisors/hypervisor.js';

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Manual' | 'Halted';

export type PowerAction =
  | { action: 'none' }
  | { action: 'start' }
  /** Ask the guest to shut down (ACPI) and come back after `recheckMs`. */
  | { action: 'shutdown'; recheckMs: number }
  /** The guest did not shut down within the grace period: stop it at once. */
  | { action: 'destroy' }
  /** A shutdown is under way; come back after `recheckMs`. */
  | { action: 'wait'; recheckMs: number };

/** States in which the domain exists as a running process (paused included). */
export function isActive(state: DomainStatus['state']): boolean {
  return state !== 'shutoff' && state !== 'crashed' && state !== 'nostate';
}

/**
 * The guest shut itself down (a clean power-off from inside), as opposed to a crash, a failed
 * start or a destroy. RerunOnFailure leaves such a VM stopped.
 */
export function stoppedByGuest(domain: Pick<DomainStatus, 'state' | 'reason'>): boolean {
  return domain.state === 'shutoff' && domain.reason === 'shutdown';
}

/**
 * Stopping: a graceful shutdown first, a destroy once `graceMs` have passed since it was asked
 * (`shutdownSince`, undefined when it was not asked yet).
 */
export function stopAction(
  domain: Pick<DomainStatus, 'state'>,
  shutdownSince: number | undefined,
  now: number,
  graceMs: number,
): PowerAction {
  if (!isActive(domain.state)) return { action: 'none' };
  if (shutdownSince === undefined) return { action: 'shutdown', recheckMs: graceMs };
  const left = shutdownSince + graceMs - now;
  return left <= 0 ? { action: 'destroy' } : { action: 'wait', recheckMs: left };
}

export function powerAction(
  strategy: RunStrategy,
  domain: Pick<DomainStatus, 'state' | 'reason'>,
  shutdownSince: number | undefined,
  now: number,
  graceMs: number,
): PowerAction {
  switch (strategy) {
    case 'Always':
      return isActive(domain.state) ? { action: 'none' } : { action: 'start' };
    case 'RerunOnFailure':
      return isActive(domain.state) || stoppedByGuest(domain) ? { action: 'none' } : { action: 'start' };
    case 'Manual':
      return { action: 'none' };
    case 'Halted':
      return stopAction(domain, shutdownSince, now, graceMs);
  }
}
