// When hosts are due a heartbeat: pure, on an injected clock (the HostPool controller's). The
// beat itself is hosts/heartbeat.ts.
import type { HostObservations } from '../hosts/fleet.js';

type Beating = Pick<HostObservations, 'lastBeatAt' | 'credentialsProblem'>;

/** A heartbeat is due: a period since the last, or never (lastBeatAt 0: first contact, or after a reconnect). */
export function beatDue(host: Beating, periodMs: number, now: number): boolean {
  return !host.credentialsProblem && now - host.lastBeatAt >= periodMs;
}

/** When the pool should be looked at again for the next heartbeat due: at least 50 ms, at most a period. */
export function nextBeatIn(hosts: Beating[], periodMs: number, now: number): number {
  const due = hosts.filter((host) => !host.credentialsProblem).map((host) => host.lastBeatAt + periodMs - now);
  return Math.max(50, Math.min(periodMs, ...due));
}
