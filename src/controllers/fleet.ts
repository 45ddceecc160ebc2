// The Fleet: every host of every HostPool as this controller process sees it, on one libvirt
// connection pool. It holds what was observed (facts, heartbeats, connection losses) and what
// the HostPool controller decided from it (ready, reason); it gives a Hypervisor for a host; and
// it forwards host events as keys: a domain's lifecycle event names the VM whose UID is the
// domain's UUID, a connection event names the pools that use the host. It never acts on an
// event: the controllers' reconciles do.
import type { Host } from '../api/hostpool.js';
import type { HostFacts, HostEvent, Hypervisor } from '../hypervisors/hypervisor.js';
import { LibvirtConnectionPool, type LinkStatus } from '../hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../hypervisors/libvirt/driver.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';
import type { HostCredentials } from '../hypervisors/libvirt/credentials.js';
import type { CredentialsResolution, SecretRef } from './host-credentials.js';

export interface HostReadiness {
  ready: boolean;
  /** Why not ready (HOST_REASONS); undefined when ready. */
  reason?: string;
  message?: string;
  /** The hypervisor VMs get on this host: detected, or declared where libvirt cannot tell. */
  hypervisor?: HypervisorType;
}

export interface FleetHost {
  readonly pool: string;
  readonly name: string;
  uri: string;
  declared: HypervisorType | undefined;
  labels: Record<string, string>;
  maintenance: boolean;
  /** spec.hosts[].credentialsSecretRef. */
  credentialsSecret: SecretRef | undefined;
  /** Why the host's credentials cannot be used (set by the HostPool controller); the host is then not contacted. */
  credentialsProblem: { reason: string; message: string } | undefined;
  /** False once the host left spec.hosts; it is kept, connected, until no VM is placed on it. */
  inSpec: boolean;
  facts: HostFacts | undefined;
  /** Facts must be read (again): first contact, or the connection came back after a loss. */
  factsStale: boolean;
  missedBeats: number;
  /** When the last heartbeat (or facts read) was made, epoch ms; 0 = never, or due now. */
  lastBeatAt: number;
  lastError: string | undefined;
  /** Set by a 'disconnected' event, cleared by 'connected'. */
  disconnected: { reason: string; message?: string } | undefined;
  /** Decided by the HostPool controller from the above. */
  readiness: HostReadiness;
  /** Fencing after the host failed (HostPool controller); undefined while it is fine. */
  fencing: HostFencing | undefined;
  /** Epoch ms since when the host is not ready (HostPool controller); undefined while ready. */
  notReadySince: number | undefined;
}

/** Where fencing of a failed host stands (mirrored in HostPool status.hosts[].fencing). */
export interface HostFencing {
  state: 'Fencing' | 'Fenced' | 'Failed';
  message: string;
  attempts: number;
  /** RFC 3339, when the state was reached. */
  time: string;
  /** Epoch ms: when a failed command may be run again. */
  retryAt?: number;
}

export interface FleetOptions {
  /**
   * The connection pool to use. Default: a pool of the Fleet's own, closed by close(). Tests
   * pass one to outlive a controller restart: a test:/// host lives in its connection.
   */
  connections?: LibvirtConnectionPool;
}

/** `uri`: the host the domain is on. */
type DomainListener = (uid: string, event: HostEvent, uri: string) => void;
type PoolListener = (pool: string, event: HostEvent) => void;
type ReadinessListener = (pool: string, hosts: string[]) => void;
type CopyListener = (uid: string) => void;

export class Fleet {
  readonly connections: LibvirtConnectionPool;
  private readonly ownsConnections: boolean;
  private readonly pools = new Map<string, Map<string, FleetHost>>();
  private readonly hypervisors = new Map<string, Hypervisor>();
  private readonly subscriptions = new Map<string, () => void>();
  private readonly domainListeners = new Set<DomainListener>();
  private readonly poolListeners = new Set<PoolListener>();
  private readonly readinessListeners = new Set<ReadinessListener>();
  private readonly copyListeners = new Set<CopyListener>();
  /** By VM UID: hosts where the pool's scan saw a live copy the VM's status does not name. */
  private readonly strayCopies = new Map<string, Set<string>>();
  private credentialsResolver: ((host: FleetHost) => CredentialsResolution) | undefined;

  constructor(options: FleetOptions = {}) {
    this.ownsConnections = options.connections === undefined;
    this.connections = options.connections ?? new LibvirtConnectionPool();
  }

  /**
   * Connections of their own, same credentials, each pool made at its first use:
   * - migration: on libvirt 9.0 other calls on a connection that carries a migration often wait
   *   for the next keepalive (5 s);
   * - heartbeat: on the shared connection a heartbeat would wait behind slow calls (domain
   *   starts during a recovery) and a busy, healthy host would miss beats. Not for test:///
   *   hosts, whose calls never block and where a second connection would be a second simulated
   *   host in memory.
   */
  private readonly sidePools = new Map<'migration' | 'heartbeat', LibvirtConnectionPool>();

  /** Domain events, by the domain's UUID (= the VM's UID), with the host's URI. Returns the unsubscribe function. */
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
   * Hosts whose readiness (or hypervisor) the HostPool controller changed: VMs waiting for
   * capacity, or placed on those hosts, are reconciled again. In-process, so it works when the
   * pool's status does not change (a restarted controller finds the same hosts ready).
   */
  onReadinessChange(listener: ReadinessListener): () => void {
    this.readinessListeners.add(listener);
    return () => this.readinessListeners.delete(listener);
  }

  readinessChanged(pool: string, hosts: string[]): void {
    if (hosts.length === 0) return;
    for (const listener of this.readinessListeners) listener(pool, hosts);
  }

  hypervisor(uri: string): Hypervisor {
    let hypervisor = this.hypervisors.get(uri);
    if (!hypervisor) {
      hypervisor = new LibvirtHypervisor(this.connections, uri, {
        migrationPool: this.sidePool('migration'),
        ...(uri.startsWith('test:') ? {} : { heartbeatPool: this.sidePool('heartbeat') }),
      });
      this.hypervisors.set(uri, hypervisor);
    }
    return hypervisor;
  }

  host(pool: string, name: string): FleetHost | undefined {
    return this.pools.get(pool)?.get(name);
  }

  hosts(pool: string): FleetHost[] {
    return [...(this.pools.get(pool)?.values() ?? [])];
  }

  connectionStatus(host: FleetHost): LinkStatus | undefined {
    return this.connections.status(host.uri);
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
        host = newHost(pool, declared);
        hosts.set(host.name, host);
      }
      host.inSpec = true;
      host.declared = declared.hypervisor;
      host.labels = { ...(declared.labels ?? {}) };
      host.maintenance = declared.maintenance ?? false;
      const ref = declared.credentialsSecretRef;
      host.credentialsSecret = ref ? { name: ref.name, namespace: ref.namespace } : undefined;
      if (!ref) host.credentialsProblem = undefined;
      // Hosts with credentials are connected by connect(), once their Secret is usable.
      if (!host.credentialsSecret) this.subscribe(host.uri);
    }
  }

  /**
   * Where the credentials of hosts with a credentialsSecretRef come from. The connection pool
   * asks at every (re)connect, so a rotated Secret applies at the next one.
   */
  useCredentials(resolver: (host: FleetHost) => CredentialsResolution): void {
    this.credentialsResolver = resolver;
    this.connections.setCredentials((uri) => this.credentialsFor(uri));
    for (const pool of this.sidePools.values()) pool.setCredentials((uri) => this.credentialsFor(uri));
  }

  private sidePool(kind: 'migration' | 'heartbeat'): LibvirtConnectionPool {
    let pool = this.sidePools.get(kind);
    if (!pool) {
      pool = new LibvirtConnectionPool();
      if (this.credentialsResolver) pool.setCredentials((uri) => this.credentialsFor(uri));
      this.sidePools.set(kind, pool);
    }
    return pool;
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

  /** Stops forwarding events; closes the connections if the Fleet made the pool. */
  async close(): Promise<void> {
    for (const off of this.subscriptions.values()) off();
    this.subscriptions.clear();
    this.domainListeners.clear();
    this.copyListeners.clear();
    this.poolListeners.clear();
    this.readinessListeners.clear();
    if (this.ownsConnections) await this.connections.closeAll();
    await Promise.all([...this.sidePools.values()].map((pool) => pool.closeAll()));
  }

  private forgetHost(hosts: Map<string, FleetHost>, host: FleetHost): void {
    hosts.delete(host.name);
    if (this.poolsUsing(host.uri).length > 0) return;
    this.subscriptions.get(host.uri)?.();
    this.subscriptions.delete(host.uri);
    this.hypervisors.delete(host.uri);
    // Only a pool of our own is ours to shrink; a shared one belongs to whoever passed it in.
    if (this.ownsConnections) void this.connections.release(host.uri);
    for (const pool of this.sidePools.values()) void pool.release(host.uri);
  }

  private poolsUsing(uri: string): FleetHost[] {
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
      for (const host of affected) {
        // Bookkeeping only; the HostPool controller decides what it means.
        if (event.type === 'disconnected') {
          host.disconnected = {
            reason: event.reason,
            ...(event.message === undefined ? {} : { message: event.message }),
          };
          host.factsStale = true;
        } else {
          host.disconnected = undefined;
          host.lastBeatAt = 0; // re-read the host at the next reconcile, not a period later
        }
      }
      for (const pool of new Set(affected.map((host) => host.pool)))
        for (const listener of this.poolListeners) listener(pool, event);
      return;
    }
    for (const listener of this.domainListeners) listener(event.domain.uuid, event, uri);
  }
}

function newHost(pool: string, declared: Host): FleetHost {
  return {
    pool,
    name: declared.name,
    uri: declared.uri,
    declared: declared.hypervisor,
    labels: {},
    maintenance: false,
    credentialsSecret: undefined,
    credentialsProblem: undefined,
    inSpec: true,
    facts: undefined,
    factsStale: true,
    missedBeats: 0,
    lastBeatAt: 0,
    lastError: undefined,
    disconnected: undefined,
    readiness: { ready: false, reason: 'Connecting', message: 'not contacted yet' },
    fencing: undefined,
    notReadySince: undefined,
  };
}
