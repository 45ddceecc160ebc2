// One host of one HostPool as this controller process sees it, in three parts with one writer
// each:
// - what the pool's spec says of it (Fleet.syncPool);
// - observations: what heartbeats (the HostPool controller, heartbeat.ts), the credentials check
//   and connection events (the Fleet) saw, written field by field as they come;
// - the verdict: what the HostPool controller decided from them (readiness, fencing), replaced
//   whole by Fleet.judge, never edited, so a reader (the VM steps) never sees half a decision.
import type { Host } from '../api/hostpool.js';
import type { HostCredentials, HostFacts } from '../hypervisors/hypervisor.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';

export interface SecretRef {
  name: string;
  namespace: string;
}

/** A host's credentials, or why they cannot be used (a HOST_REASONS reason and a message). */
export type CredentialsResolution =
  { ok: true; credentials: HostCredentials } | { ok: false; reason: string; message: string };

export interface HostReadiness {
  readonly ready: boolean;
  /** Why not ready (HOST_REASONS); undefined when ready. */
  readonly reason?: string;
  readonly message?: string;
  /** The hypervisor VMs get on this host: detected, or declared where libvirt cannot tell. */
  readonly hypervisor?: HypervisorType;
}

/** Where fencing of a failed host stands (mirrored in HostPool status.hosts[].fencing). */
export interface HostFencing {
  readonly state: 'Fencing' | 'Fenced' | 'Failed';
  readonly message: string;
  readonly attempts: number;
  /** RFC 3339, when the state was reached. */
  readonly time: string;
  /** Epoch ms: when a failed command may be run again. */
  readonly retryAt?: number;
}

/** What was observed of a host. */
export interface HostObservations {
  facts: HostFacts | undefined;
  /** Facts must be read (again): first contact, or the connection came back after a loss. */
  factsStale: boolean;
  missedBeats: number;
  /** When the last heartbeat (or facts read) was made, epoch ms; 0 = never, or due now. */
  lastBeatAt: number;
  /** When a heartbeat (or facts read) last succeeded, epoch ms; undefined = not since this process started. */
  lastAnswerAt: number | undefined;
  lastError: string | undefined;
  /** Set by a 'disconnected' event, cleared by 'connected'. */
  disconnected: { reason: string; message?: string } | undefined;
  /** Why the host's credentials cannot be used (the HostPool controller's check); the host is then not contacted. */
  credentialsProblem: { reason: string; message: string } | undefined;
}

/** What the HostPool controller decided of a host. Replaced whole (Fleet.judge). */
export interface HostVerdict {
  readonly readiness: HostReadiness;
  /** Fencing after the host failed; undefined while it is fine. */
  readonly fencing: HostFencing | undefined;
  /** Epoch ms since when the host is not ready; undefined while ready. */
  readonly notReadySince: number | undefined;
}

export interface FleetHost {
  readonly pool: string;
  readonly name: string;
  readonly uri: string;
  // From spec.hosts[] (Fleet.syncPool).
  readonly declared: HypervisorType | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly maintenance: boolean;
  /** spec.hosts[].credentialsSecretRef. */
  readonly credentialsSecret: SecretRef | undefined;
  /** False once the host left spec.hosts; it is kept, connected, until no VM is placed on it. */
  readonly inSpec: boolean;
  readonly observed: HostObservations;
  readonly verdict: HostVerdict;
}

/** The verdict of a host nobody has judged yet. */
export const UNJUDGED: HostVerdict = Object.freeze({
  readiness: Object.freeze({ ready: false, reason: 'Connecting', message: 'not contacted yet' }),
  fencing: undefined,
  notReadySince: undefined,
});

/**
 * The verdict that follows `previous` given a new readiness and fencing state: notReadySince
 * is kept while the host stays not ready, set at `now` when it becomes so, cleared when ready.
 */
export function nextVerdict(
  previous: HostVerdict,
  readiness: HostReadiness,
  fencing: HostFencing | undefined,
  now: number,
): HostVerdict {
  return Object.freeze({
    readiness: Object.freeze({ ...readiness }),
    fencing: fencing && Object.freeze({ ...fencing }),
    notReadySince: readiness.ready ? undefined : (previous.notReadySince ?? now),
  });
}

/**
 * Whether VMs waiting for capacity or placed on the host must hear of a new verdict: its
 * readiness or hypervisor changed, or it is the host's first (a host given a new URI is a new
 * FleetHost, and the VMs placed on it must hear that it is not ready, even when the placeholder
 * said so too: nothing else would reconcile a running VM).
 */
export function readinessChanged(previous: HostVerdict | undefined, next: HostVerdict): boolean {
  return (
    previous === undefined ||
    previous.readiness.ready !== next.readiness.ready ||
    previous.readiness.hypervisor !== next.readiness.hypervisor
  );
}

/** A host as first declared: nothing observed, not judged. */
export function newFleetHost(pool: string, declared: Host): FleetHost {
  return {
    pool,
    name: declared.name,
    uri: declared.uri,
    declared: declared.hypervisor,
    labels: {},
    maintenance: false,
    credentialsSecret: undefined,
    inSpec: true,
    observed: {
      facts: undefined,
      factsStale: true,
      missedBeats: 0,
      lastBeatAt: 0,
      lastAnswerAt: undefined,
      lastError: undefined,
      disconnected: undefined,
      credentialsProblem: undefined,
    },
    verdict: UNJUDGED,
  };
}
