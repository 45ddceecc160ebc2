// The Fleet: every host of every HostPool as this controller process sees it (fleet-host.ts:
// spec, observations, verdict), on the Hypervisors a HypervisorFactory makes. It gives a
// Hypervisor for a host; it keeps what connection events say, and the verdicts the HostPool
// controller hands it (judge); and it forwards host events as keys: a domain's lifecycle event
// names the VM whose UID is the domain's UUID, a connection event names the pools that use the
// host. It never acts on an event: the controllers' reconciles do. It knows no driver.
import type { Host } from '../api/hostpool.js';
import type { HostCredentials, HostEvent, Hypervisor } from '../hypervisors/hypervisor.js';
import {
  newFleetHost,
  readinessChanged,
  type CredentialsResolution,
  type FleetHost,
  type HostVerdict,
} from './fleet-host.js';
import type { HypervisorFactory, HypervisorRole } from './hypervisor-factory.js';

export type {
  CredentialsResolution,
  FleetHost,
  HostFencing,
  HostObservations,
  HostReadiness,
  HostVerdict,
  SecretRef,
} from './fleet-host.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** The Fleet's own view of a host: it alone writes the spec part and the verdict. */
type HostRecord = Mutable<FleetHost>;

/** `uri`: the host the domain is on. */
type DomainListener = (uid: string, event: HostEvent, uri: string) => void;
type PoolListener = (pool: string, event: HostEvent) => void;
type ReadinessListener = (pool: string, hosts: string[]) => void;
type CopyListener = (uid: string) => void;

export class Fleet {
  private readonly pools = new Map<string, Map<string, HostRecord>>();
  /** By role, then URI: one Hypervisor each, kept until the host goes. */
  private readonly hypervisors = { control: new Map<string, Hypervisor>(), heartbeat: new Map<string, Hypervisor>() };
  private readonly subscriptions = new Map<string, () => void>();
  private readonly domainListeners = new Set<DomainListener>();
  private readonly poolListeners = new Set<PoolListener>();
  private readonly readinessListeners = new Set<ReadinessListener>();
  private readonly copyListeners = new Set<CopyListener>();
  /** By VM UID: hosts where the pool's scan saw a live copy the VM's status does not name. */
  private readonly strayCopies = new Map<string, Set<string>>();
  /** By VM UID, oldest first: when this process let the deleted VM go (recordDeletion). */
  private readonly deletions = new Map<string, number>();
  /** Hosts judged at least once (a host given a new URI is a new record, and starts unjudged). */
  private readonly judged = new WeakSet<FleetHost>();
  private credentialsResolver: ((host: FleetHost) => CredentialsResolution) | undefined;

  /** `factory` is the Fleet's from now on: close() closes it. */
  constructor(private readonly factory: HypervisorFactory) {}

  /**
   * A live copy of VM `uid` on `host`, where its status does not say it runs (the HostPool
   * controller's scan). Only the VM controller decides what becomes of it (vm/location.ts).
   */
  reportStrayCopy(uid: string, host: string): void {
    const hosts = this.strayCopies.get(uid) ?? new Set<string>();
    hosts.add(host);
    this.strayCopies.set(uid, hosts);
    for (const listener of this.copyListeners) listener(uid);
  }

  /**
   * This process deleted VM `uid` (its domain was gone from every host that answered, and its
   * finalizer removed). A domain of it that shows up afterwards was made by a call sent before a
   * controller restart that completed after the deletion looked: the orphan scan removes it.
   */
  recordDeletion(uid: string, now: number): void {
    for (const [key, at] of this.deletions) {
      if (now - at <= DELETION_MEMORY_MS) break;
      this.deletions.delete(key);
    }
    this.deletions.delete(uid);
    this.deletions.set(uid, now);
  }

  /** Whether this process deleted VM `uid` within the last DELETION_MEMORY_MS. */
  deletedHere(uid: string, now: number): boolean {
    const at = this.deletions.get(uid);
    return at !== undefined && now - at <= DELETION_MEMORY_MS;
  }

  /** The hosts reported by reportStrayCopy since the last call, taken out. */
  takeStrayCopies(uid: string): string[] {
    const hosts = this.strayCopies.get(uid);
    this.strayCopies.delete(uid);
    return hosts ? [...hosts] : [];
  }

  onStrayCopy(listener: CopyListener): () => void {
    this.copyListeners.add(listener);
    return () => this.copyListeners.delete(listener);
  }

  /** Domain events, by the domain's UUID (= the VM's UID), with the host's URI. Returns the unsubscribe function. */
  onDomainEvent(listener: DomainListener): () => void {
    this.domainListeners.add(listener);
    return () => this.domainListeners.delete(listener);
  }

  /** Connection events of a host, by the name of each pool that has it. */
  onPoolEvent(listener: PoolListener): () => void {
    this.poolListeners.add(listener);
    return () => this.poolListeners.delete(listener);
  }

  /**
   * Hosts whose readiness (or hypervisor) a verdict changed: VMs waiting for capacity, or placed
   * on those hosts, are reconciled again. In-process, so it works when the pool's status does
   * not change (a restarted controller finds the same hosts ready).
   */
  onReadinessChange(listener: ReadinessListener): () => void {
    this.readinessListeners.add(listener);
    return () => this.readinessListeners.delete(listener);
  }

  /**
   * The HostPool controller's verdicts on hosts of `pool`, each replacing the host's whole; the
   * hosts whose readiness changed (readinessChanged) are told to onReadinessChange listeners.
   */
  judge(pool: string, verdicts: ReadonlyMap<FleetHost, HostVerdict>): void {
    const changed: string[] = [];
    for (const [host, verdict] of verdicts) {
      const record = this.pools.get(pool)?.get(host.name);
      if (record !== host) continue; // gone, or replaced by a host of a new URI, meanwhile
      if (readinessChanged(this.judged.has(host) ? host.verdict : undefined, verdict)) changed.push(host.name);
      this.judged.add(host);
      record.verdict = verdict;
    }
    if (changed.length === 0) return;
    for (const listener of this.readinessListeners) listener(pool, changed);
  }

  /** Host `uri`'s Hypervisor: 'control' for everything but the HostPool controller's heartbeats. */
  hypervisor(uri: string, role: HypervisorRole = 'control'): Hypervisor {
    const made = this.hypervisors[role];
    let hypervisor = made.get(uri);
    if (!hypervisor) {
      hypervisor = this.factory.hypervisor(uri, role);
      made.set(uri, hypervisor);
    }
    return hypervisor;
  }

  host(pool: string, name: string): FleetHost | undefined {
    return this.pools.get(pool)?.get(name);
  }

  hosts(pool: string): FleetHost[] {
    return [...(this.pools.get(pool)?.values() ?? [])];
  }

  /**
   * Makes the pool's hosts those of `spec` (added, changed, or marked as removed). Hosts that
   * left the spec stay until removeHost(): their VMs still have to be deleted from them.
   */
  syncPool(pool: string, spec: readonly Host[]): void {
    let hosts = this.pools.get(pool);
    if (!hosts) {
      hosts = new Map();
      this.pools.set(pool, hosts);
    }
    const wanted = new Set(spec.map((host) => host.name));
    for (const host of hosts.values()) if (!wanted.has(host.name)) host.inSpec = false;
    for (const declared of spec) {
      let host = hosts.get(declared.name);
      if (host && host.uri !== declared.uri) {
        // A new URI is a new host behind the same name: start from scratch.
        this.forgetHost(hosts, host);
        host = undefined;
      }
      if (!host) {
        host = newFleetHost(pool, declared);
        hosts.set(host.name, host);
      }
      host.inSpec = true;
      host.declared = declared.hypervisor;
      host.labels = { ...(declared.labels ?? {}) };
      host.maintenance = declared.maintenance ?? false;
      const ref = declared.credentialsSecretRef;
      host.credentialsSecret = ref ? { name: ref.name, namespace: ref.namespace } : undefined;
      if (!ref) host.observed.credentialsProblem = undefined;
      // Hosts with credentials are connected by connect(), once their Secret is usable.
      if (!host.credentialsSecret) this.subscribe(host.uri);
    }
  }

  /**
   * Where the credentials of hosts with a credentialsSecretRef come from. The connections ask
   * at every (re)connect, so a rotated Secret applies at the next one.
   */
  useCredentials(resolver: (host: FleetHost) => CredentialsResolution): void {
    this.credentialsResolver = resolver;
    this.factory.useCredentials((uri) => this.credentialsFor(uri));
  }

  /** Connects a host (and forwards its events); for hosts whose credentials were checked. */
  connect(host: FleetHost): void {
    this.subscribe(host.uri);
  }

  private credentialsFor(uri: string): HostCredentials | undefined {
    const host = this.poolsUsing(uri).find((candidate) => candidate.credentialsSecret);
    if (!host || !this.credentialsResolver) return undefined;
    const resolution = this.credentialsResolver(host);
    if (!resolution.ok) throw new Error(resolution.message);
    return resolution.credentials;
  }

  /** Drops a host that left its pool's spec (or whose pool is gone) and has no VMs left. */
  removeHost(pool: string, name: string): void {
    const hosts = this.pools.get(pool);
    const host = hosts?.get(name);
    if (!hosts || !host) return;
    this.forgetHost(hosts, host);
    if (hosts.size === 0) this.pools.delete(pool);
  }

  /** Stops forwarding events and closes the factory's connections. */
  async close(): Promise<void> {
    for (const off of this.subscriptions.values()) off();
    this.subscriptions.clear();
    this.domainListeners.clear();
    this.copyListeners.clear();
    this.poolListeners.clear();
    this.readinessListeners.clear();
    await this.factory.close();
  }

  private forgetHost(hosts: Map<string, HostRecord>, host: HostRecord): void {
    hosts.delete(host.name);
    if (this.poolsUsing(host.uri).length > 0) return;
    this.subscriptions.get(host.uri)?.();
    this.subscriptions.delete(host.uri);
    this.hypervisors.control.delete(host.uri);
    this.hypervisors.heartbeat.delete(host.uri);
    void this.factory.release(host.uri);
  }

  private poolsUsing(uri: string): HostRecord[] {
    return [...this.pools.values()].flatMap((hosts) => [...hosts.values()].filter((host) => host.uri === uri));
  }

  /** One subscription per URI, whichever pools and hosts share it. */
  private subscribe(uri: string): void {
    if (this.subscriptions.has(uri)) return;
    const off = this.hypervisor(uri).subscribe((event) => this.forward(uri, event));
    this.subscriptions.set(uri, off);
  }

  private forward(uri: string, event: HostEvent): void {
    if (event.type === 'connected' || event.type === 'disconnected') {
      const affected = this.poolsUsing(uri);
      for (const { observed } of affected) {
        // Observations only; the HostPool controller decides what they mean.
        if (event.type === 'disconnected') {
          observed.disconnected = {
            reason: event.reason,
            ...(event.message === undefined ? {} : { message: event.message }),
          };
          observed.factsStale = true;
        } else {
          observed.disconnected = undefined;
          observed.lastBeatAt = 0; // re-read the host at the next reconcile, not a period later
        }
      }
      for (const pool of new Set(affected.map((host) => host.pool)))
        for (const listener of this.poolListeners) listener(pool, event);
      return;
    }
    for (const listener of this.domainListeners) listener(event.domain.uuid, event, uri);
  }
}

/** How long a deletion is remembered: a late define lands within seconds of a restart; 10 min is ample. */
const DELETION_MEMORY_MS = 10 * 60_000;
