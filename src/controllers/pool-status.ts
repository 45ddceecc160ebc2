// Pure pieces of the HostPool controller: whether a host is ready (and why not), and the pool's
// status from its hosts and their allocations. Nothing here changes per heartbeat, so a steady
// pool computes the status it already has and writes nothing; heartbeat times are added only to
// a status that is written anyway (withHeartbeatTimes).
import { isDeepStrictEqual } from 'node:util';
import { normalize } from '../runtime/status.js';
import { rfc3339 } from '../runtime/time.js';
import type { HostPoolStatus, HostStatus } from '../api/hostpool.js';
import { findCondition, setCondition, type Condition } from '../runtime/conditions.js';
import type { HostAllocation } from './allocations.js';
import type { FleetHost, HostReadiness } from '../hosts/fleet.js';
import { poolKstatus, withKstatusConditions } from './kstatus.js';
import { orphanList, type OrphanDomain } from './orphan-domains.js';
import { HOST_REASONS, POOL_CONDITIONS, POOL_REASONS } from './reasons.js';

/** Reasons of a host that failed while in use (as opposed to one misconfigured or not contacted yet): its VMs are recovered elsewhere. */
export const FAILED_HOST_REASONS: ReadonlySet<string> = new Set([
  HOST_REASONS.Disconnected,
  HOST_REASONS.HeartbeatMissed,
  HOST_REASONS.Unreachable,
]);

/** Decides a host's readiness from its spec and what was observed of it. */
export function hostReadiness(
  host: Pick<FleetHost, 'inSpec' | 'uri' | 'name' | 'declared' | 'observed'>,
  failureThreshold: number,
): HostReadiness {
  const { credentialsProblem, disconnected, missedBeats, lastError, facts } = host.observed;
  if (!host.inSpec)
    return { ready: false, reason: HOST_REASONS.RemovedFromSpec, message: 'removed from spec.hosts; takes no new VMs' };
  if (credentialsProblem)
    return { ready: false, reason: credentialsProblem.reason, message: credentialsProblem.message };
  if (disconnected) {
    const detail = disconnected.message ? `: ${disconnected.message}` : '';
    return {
      ready: false,
      reason: HOST_REASONS.Disconnected,
      message: `connection to ${host.uri} lost (${disconnected.reason})${detail}; reconnecting`,
    };
  }
  if (missedBeats >= failureThreshold) {
    return {
      ready: false,
      reason: HOST_REASONS.HeartbeatMissed,
      message: `${missedBeats} heartbeats to ${host.uri} missed (spec.failureDetection.failureThreshold is ${failureThreshold}): ${lastError ?? 'no answer'}`,
    };
  }
  if (!facts) {
    return lastError
      ? { ready: false, reason: HOST_REASONS.Unreachable, message: `cannot read ${host.uri}: ${lastError}` }
      : { ready: false, reason: HOST_REASONS.Connecting, message: `not contacted yet: ${host.uri}` };
  }
  const detected = facts.type === 'test' ? undefined : facts.type;
  if (detected && host.declared && detected !== host.declared) {
    return {
      ready: false,
      reason: HOST_REASONS.HypervisorMismatch,
      message: `spec.hosts[${host.name}].hypervisor is ${host.declared}, but libvirt reports driver ${facts.driver} (${detected}); fix the declaration or the URI`,
    };
  }
  const hypervisor = detected ?? host.declared;
  if (!hypervisor) {
    return {
      ready: false,
      reason: HOST_REASONS.HypervisorUnknown,
      message: `libvirt driver ${facts.driver} cannot tell kvm from xen: set spec.hosts[${host.name}].hypervisor`,
    };
  }
  return { ready: true, hypervisor };
}

/** Bytes as a Kubernetes quantity, in the largest binary unit that divides them. */
export function bytesToQuantity(bytes: number): string {
  for (const [suffix, size] of [
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(Math.round(bytes));
}

/** A host in maintenance: VMs still placed there, of which migrating now, and those whose migration gave up (names). */
export interface DrainProgress {
  host: string;
  vms: number;
  migrating: number;
  failed: string[];
}

export interface PoolStatusInput {
  generation: number | undefined;
  previous: HostPoolStatus | undefined;
  /** The hosts of spec.hosts, in spec order. */
  hosts: FleetHost[];
  allocations: Map<string, HostAllocation>;
  /** Hosts gone from spec.hosts that still have VMs, with those VMs. */
  blockedRemovals: Array<{ host: string; vms: string[] }>;
  /** Orphan domains per host name, from the host's last scan; a host not scanned yet is absent. */
  orphans?: Map<string, OrphanDomain[]>;
  /** Hosts in maintenance and how far their drain is. */
  maintenance?: DrainProgress[];
  now?: Date;
}

export function poolStatus(input: PoolStatusInput): HostPoolStatus {
  const now = input.now ?? new Date();
  const hosts = input.hosts.map((host) =>
    hostStatus(host, input.allocations.get(host.name), input.orphans?.get(host.name), input.previous, now),
  );
  const notReady = hosts.filter((host) => !host.ready);
  const readyHosts = hosts.length - notReady.length;
  const why = notReady.map((host) => `${host.name}: ${host.reason} (${host.message})`).join('; ');

  let conditions = input.previous?.conditions as Condition[] | undefined;
  const set = (type: string, status: 'True' | 'False', reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, input.generation, now);
  };
  if (readyHosts > 0)
    set(POOL_CONDITIONS.Ready, 'True', POOL_REASONS.HostsReady, `${readyHosts} of ${hosts.length} hosts ready`);
  else
    set(
      POOL_CONDITIONS.Ready,
      'False',
      POOL_REASONS.NoHostReady,
      hosts.length === 0 ? 'the pool has no hosts' : `no host is ready: ${why}`,
    );
  if (notReady.length > 0) set(POOL_CONDITIONS.Degraded, 'True', POOL_REASONS.HostsNotReady, why);
  else set(POOL_CONDITIONS.Degraded, 'False', POOL_REASONS.AllHostsReady, 'every host is ready');
  const mismatched = notReady.filter((host) => host.reason === HOST_REASONS.HypervisorMismatch);
  if (mismatched.length > 0) {
    set(
      POOL_CONDITIONS.HypervisorMismatch,
      'True',
      POOL_REASONS.DeclaredDiffersFromDetected,
      mismatched.map((host) => `${host.name}: ${host.message}`).join('; '),
    );
  } else {
    set(
      POOL_CONDITIONS.HypervisorMismatch,
      'False',
      POOL_REASONS.AsDeclared,
      'no host contradicts its declared hypervisor',
    );
  }
  if (input.blockedRemovals.length > 0) {
    const list = input.blockedRemovals.map(
      ({ host, vms }) => `${host} (${vms.length} VMs: ${vms.slice(0, 5).join(', ')}${vms.length > 5 ? ', …' : ''})`,
    );
    set(
      POOL_CONDITIONS.RemovalBlocked,
      'True',
      POOL_REASONS.HostsStillHaveVMs,
      `removed from spec.hosts but still running VMs: ${list.join('; ')}; delete those VMs first, the hosts stay connected until then`,
    );
  } else {
    set(POOL_CONDITIONS.RemovalBlocked, 'False', POOL_REASONS.NothingBlocked, 'no removed host has VMs');
  }
  const orphaned = input.hosts
    .map((host) => ({ host: host.name, uri: host.uri, orphans: input.orphans?.get(host.name) ?? [] }))
    .filter((entry) => entry.orphans.length > 0);
  if (orphaned.length > 0) {
    const count = orphaned.reduce((sum, entry) => sum + entry.orphans.length, 0);
    set(
      POOL_CONDITIONS.OrphanDomains,
      'True',
      POOL_REASONS.OrphanDomainsFound,
      `${count} domain${count === 1 ? '' : 's'} with virtfleet's marker but no VirtualMachine: ${orphanList(orphaned)}. ` +
        'virtfleet leaves them alone. Check each (virsh -c URI dumpxml NAME names the VM it belonged to), then remove it with ' +
        '`virsh -c URI undefine NAME` (`virsh -c URI destroy NAME` first if it runs; --nvram for UEFI guests). ' +
        'A VirtualMachine recreated under the same name cannot adopt it (a new object has a new UID), and its domain is refused while the orphan holds the name.',
    );
  } else {
    set(
      POOL_CONDITIONS.OrphanDomains,
      'False',
      POOL_REASONS.NoOrphanDomains,
      "no host has domains with virtfleet's marker and no VirtualMachine",
    );
  }
  const draining = input.maintenance ?? [];
  if (draining.length > 0) {
    const parts = draining.map(({ host, vms, migrating, failed }) =>
      vms === 0
        ? `${host}: empty`
        : `${host}: ${vms} VM${vms === 1 ? '' : 's'} left` +
          (migrating > 0 ? `, ${migrating} migrating` : '') +
          (failed.length > 0
            ? `, not movable: ${failed.slice(0, 5).join(', ')}${failed.length > 5 ? ', …' : ''} (see their Migrating condition)`
            : ''),
    );
    const empty = draining.every((entry) => entry.vms === 0);
    set(
      POOL_CONDITIONS.Maintenance,
      'True',
      empty ? POOL_REASONS.Drained : POOL_REASONS.Draining,
      `hosts in maintenance: ${parts.join('; ')}`,
    );
  } else {
    set(POOL_CONDITIONS.Maintenance, 'False', POOL_REASONS.NoMaintenance, 'no host is in maintenance');
  }
  // Reconciling or Stalled, for kstatus (kstatus.ts).
  const verdict = poolKstatus(
    findCondition(conditions, POOL_CONDITIONS.Ready),
    notReady,
    hosts.length,
    findCondition(conditions, POOL_CONDITIONS.Maintenance),
  );
  conditions = withKstatusConditions(conditions, verdict, input.generation, now);
  return { hosts, readyHosts, hostCount: hosts.length, conditions, observedGeneration: input.generation };
}

function hostStatus(
  host: FleetHost,
  allocation: HostAllocation | undefined,
  orphans: OrphanDomain[] | undefined,
  previous: HostPoolStatus | undefined,
  now: Date,
): HostStatus {
  const { readiness, fencing } = host.verdict;
  const facts = host.observed.facts;
  const before = previous?.hosts?.find((entry) => entry.name === host.name);
  const lastTransitionTime =
    before && before.ready === readiness.ready && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(now);
  return {
    name: host.name,
    ready: readiness.ready,
    reason: readiness.reason,
    message: readiness.message,
    hypervisor: readiness.hypervisor ?? (facts?.type === 'test' ? host.declared : facts?.type),
    hypervisorVersion: facts?.hypervisorVersion,
    libvirtVersion: facts?.libvirtVersion,
    capacity: facts ? { cpus: facts.cpu.count, memory: bytesToQuantity(facts.memoryBytes) } : undefined,
    allocated: { cpus: allocation?.cpus ?? 0, memory: bytesToQuantity(allocation?.memoryBytes ?? 0) },
    vmCount: allocation?.vms.length ?? 0,
    orphanDomains: orphans?.length,
    lastTransitionTime,
    // Carried over; brought up to date only by withHeartbeatTimes.
    lastHeartbeatTime: before?.lastHeartbeatTime,
    ...(fencing
      ? { fencing: { state: fencing.state, message: fencing.message, attempts: fencing.attempts, time: fencing.time } }
      : {}),
  };
}

/** Whether `next` differs from the status the object has (as the API server stores it: undefined values dropped). */
export function statusChanged(previous: HostPoolStatus | undefined, next: HostPoolStatus): boolean {
  return !isDeepStrictEqual(normalize(previous ?? {}), normalize(next));
}

/**
 * `status` with each host's lastHeartbeatTime set to its last answered heartbeat in this
 * process (kept as it was when none answered since it started). Only for a status written
 * anyway: a heartbeat alone never writes, so the time is as of the pool's last status change.
 */
export function withHeartbeatTimes(status: HostPoolStatus, hosts: FleetHost[]): HostPoolStatus {
  const answers = new Map(hosts.map((host) => [host.name, host.observed.lastAnswerAt]));
  return {
    ...status,
    hosts: status.hosts?.map((entry) => {
      const at = answers.get(entry.name);
      return at === undefined ? entry : { ...entry, lastHeartbeatTime: rfc3339(at) };
    }),
  };
}
