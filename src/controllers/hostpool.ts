// The HostPool controller (key: the pool's name; HostPools are cluster-scoped).
//
//   get (gone → let its hosts go once they have no VMs) → hosts in the Fleet match spec.hosts
//   → heartbeat each host that is due (facts on first contact and after a reconnect)
//   → scan the hosts that are due for orphan domains (and report copies of VMs that live
//   elsewhere now to the VM controller) → readiness per host → fencing of failed hosts that
//   still have VMs (hostpool-fencing.ts)
//   → status (only when changed), an Event when the orphans changed, per-host metrics
//   → come back at the next heartbeat.
//
// Heartbeats and scans are libvirt calls, never API calls, and status holds no per-beat
// timestamps: a steady pool writes nothing.
//
// Orphan scans (orphan-domains.ts): on first contact and after a reconnect (the facts are read
// again), every orphanScanIntervalMs, and soon after a domain event of a UUID that is no VM's
// (a domain came or went behind the controller's back) or a VM's deletion (its domain may have
// been left behind when its finalizer was removed by hand).
import { errorText } from './error-text.js';
import type { Logger } from '../observability/logging.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import { Controller } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeClient } from '../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../runtime/reconciler.js';
import { watchMapped, watchOwn, type Source } from '../runtime/sources.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import type { Condition } from '../runtime/conditions.js';
import type { Allocations, HostAllocation } from './allocations.js';
import type { Fleet, FleetHost } from './fleet.js';
import { HostOrphanScan, orphanList, type HostOrphans, type OrphanDomain } from './orphan-domains.js';
import { hostReadiness, poolStatus } from './pool-status.js';
import { HostFencer } from './hostpool-fencing.js';
import { beatDue, nextBeatIn } from './heartbeats.js';
import { POOL_EVENTS, VM_REASONS } from './reasons.js';
import { HOST_POOL, type PoolObject, type VmObject } from './resources.js';
import { untilAborted } from '../runtime/abort.js';
import { resolveCredentials, type SecretObject } from './host-credentials.js';

export interface HostPoolControllerOptions {
  client: KubeClient;
  pools: Informer<PoolObject>;
  vms: Informer<VmObject>;
  fleet: Fleet;
  allocations: Allocations;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Cached Secrets of credentialsNamespace; without it, hosts that name a Secret are not contacted. */
  secrets?: Informer<SecretObject>;
  /** The one namespace host credential Secrets may be in (the controller's). */
  credentialsNamespace: string;
  /** Events on pools (orphan domains found or gone); without it, none are recorded. */
  events?: EventRecorder;
  /** Time between two scans of a host for orphan domains. Default 5 minutes. */
  orphanScanIntervalMs?: number;
  /**
   * The one namespace whose VirtualMachines are in `vms`, when the controller watches only one:
   * domains of VMs in other namespaces cannot be judged, and are never reported as orphans.
   */
  vmNamespace?: string;
  /** The clock decisions read (epoch ms); tests inject their own. Default Date.now. */
  now?: () => number;
}

export const DEFAULT_ORPHAN_SCAN_INTERVAL_MS = 5 * 60_000;

export class HostPoolReconciler implements Reconciler {
  /** Orphan scan state per host; a host given a new URI is a new FleetHost, and starts afresh. */
  private readonly scans = new WeakMap<FleetHost, HostOrphanScan>();
  /** Per pool, the orphans last reported (`host/uuid` → what the Event names), for Events on change. */
  private readonly reportedOrphans = new Map<
    string,
    Map<string, { host: string; uri: string; orphan: OrphanDomain }>
  >();
  /** Hosts whose readiness this controller decided at least once. */
  private readonly decided = new WeakSet<FleetHost>();
  /** Per pool, the hosts that have metric series. */
  private readonly metricHosts = new Map<string, Set<string>>();
  private readonly orphanScanIntervalMs: number;
  /** Called with a pool name when something done in the background (fencing) needs a reconcile. */
  readonly wakers = new Set<(pool: string) => void>();
  private readonly fencer: HostFencer;

  private readonly now: () => number;

  constructor(private readonly options: HostPoolControllerOptions) {
    this.orphanScanIntervalMs = options.orphanScanIntervalMs ?? DEFAULT_ORPHAN_SCAN_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    this.fencer = new HostFencer(options, this.now, (pool) => {
      for (const wake of this.wakers) wake(pool);
    });
  }

  scanOf(host: FleetHost): HostOrphanScan {
    let scan = this.scans.get(host);
    if (!scan) {
      scan = new HostOrphanScan();
      this.scans.set(host, scan);
    }
    return scan;
  }

  async reconcile({ key }: ReconcileContext): Promise<ReconcileResult | void> {
    const { pools, fleet } = this.options;
    const pool = pools.get(key);
    const gone = !pool || Boolean(pool.metadata.deletionTimestamp);
    fleet.syncPool(key, gone ? [] : pool.spec.hosts);
    const allocations = this.options.allocations.byHost(key);
    const blockedRemovals = this.releaseRemovedHosts(key, allocations);
    if (gone) {
      this.reportMetrics(key, allocations);
      if (fleet.hosts(key).length === 0) this.reportedOrphans.delete(key);
      return;
    }

    const spec = pool.spec;
    const periodMs = spec.failureDetection.heartbeatPeriodSeconds * 1000;
    const hosts = spec.hosts
      .map((declared) => fleet.host(key, declared.name))
      .filter((host): host is FleetHost => host !== undefined);
    for (const host of hosts) this.checkCredentials(host);
    await Promise.all(hosts.map((host) => this.beatIfDue(host, periodMs)));
    const scannedBefore = new Map(hosts.map((host) => [host, this.scanOf(host).lastScanAt]));
    await Promise.all(hosts.map((host) => this.scanIfDue(host, periodMs)));
    for (const host of hosts.filter((host) => this.scanOf(host).lastScanAt > (scannedBefore.get(host) ?? 0)))
      this.reportStrayCopies(key, host);
    const changed: string[] = [];
    for (const host of hosts) {
      const next = hostReadiness(host, spec.failureDetection.failureThreshold);
      // A host's first decision counts as a change even when it is "not ready" like the
      // placeholder it replaces: a host given a new URI is a new FleetHost, and the VMs placed
      // on it must hear that it is not ready (nothing else would reconcile a running VM).
      const first = !this.decided.has(host);
      if (first || next.ready !== host.readiness.ready || next.hypervisor !== host.readiness.hypervisor)
        changed.push(host.name);
      this.decided.add(host);
      host.readiness = next;
      if (next.ready) host.notReadySince = undefined;
      else host.notReadySince ??= this.now();
    }
    this.fencer.fence(pool, hosts, allocations);
    fleet.readinessChanged(key, changed);

    const orphans = new Map<string, OrphanDomain[]>();
    for (const host of hosts) {
      const found = this.scans.get(host)?.orphans;
      if (found) orphans.set(host.name, found);
    }
    const maintenance = hosts
      .filter((host) => host.maintenance)
      .map((host) => {
        const placed = allocations.get(host.name)?.vms ?? [];
        const objects = placed.map((key) => this.options.vms.get(key));
        return {
          host: host.name,
          vms: placed.length,
          migrating: objects.filter((vm) => vm?.status?.phase === 'Migrating').length,
          failed: objects
            .filter((vm) =>
              (vm?.status?.conditions as Condition[] | undefined)?.some(
                (c) => c.type === 'Migrating' && c.reason === VM_REASONS.MigrationGaveUp,
              ),
            )
            .map((vm) => vm!.metadata.name ?? ''),
        };
      });
    const status = poolStatus({
      generation: pool.metadata.generation,
      previous: pool.status,
      hosts,
      allocations,
      blockedRemovals,
      orphans,
      maintenance,
    });
    // Metrics first: whoever sees the new status through a watch finds them up to date.
    this.reportMetrics(key, allocations);
    await patchStatusIfChanged(
      this.options.client,
      HOST_POOL,
      pool as PoolObject & { status?: Record<string, unknown> },
      status as Record<string, unknown>,
    );
    this.reportOrphanChanges(pool, hosts);
    const retries = hosts.flatMap((host) =>
      host.fencing?.state === 'Failed' && host.fencing.retryAt ? [Math.max(0, host.fencing.retryAt - this.now())] : [],
    );
    return { requeueAfterMs: Math.min(nextBeatIn(hosts, periodMs, this.now()), ...retries) };
  }

  /**
   * Copies of VMs whose status names another host (moved off this host while it was down, or a
   * migration this host took part in), from the scan just made: reported to the VM controller,
   * which alone decides what becomes of a VM's copies, by the one location rule (vm/location.ts):
   * a stopped copy is removed, a running one only on evidence. A VM whose migration is under way
   * is left alone: its domain is on both hosts for a while.
   */
  private reportStrayCopies(poolName: string, host: FleetHost): void {
    const { vms, allocations, fleet } = this.options;
    const byUid = new Map(vms.list().map((vm) => [vm.metadata.uid ?? '', vm]));
    for (const domain of this.scanOf(host).lastDomains) {
      const vm = byUid.get(domain.uuid);
      if (!vm || vm.spec.hostPoolRef.name !== poolName) continue;
      const placed = allocations.hostOf(vm);
      if (
        !placed ||
        placed === host.name ||
        vm.status?.migration ||
        vm.status?.phase === 'Migrating' ||
        allocations.migrating.has(domain.uuid)
      )
        continue;
      fleet.reportStrayCopy(domain.uuid, host.name);
    }
  }

  /**
   * Scans a reachable host for orphan domains when a scan is due: first contact or reconnect,
   * a domain event that asked for one, or orphanScanIntervalMs since the last. A failed scan
   * keeps the last result and is tried again at the next reconcile.
   */
  private async scanIfDue(host: FleetHost, periodMs: number): Promise<void> {
    const scan = this.scanOf(host);
    if (!scan.due && this.now() - scan.lastScanAt < this.orphanScanIntervalMs) return;
    if (host.credentialsProblem || host.disconnected || !host.facts || host.missedBeats > 0) return; // not now: it is not answering
    const { vms, vmNamespace, metrics, logger } = this.options;
    try {
      await scan.scan({
        hypervisor: this.options.fleet.hypervisor(host.uri),
        knownUids: () => new Set(vms.list().map((vm) => vm.metadata.uid ?? '')),
        judges: (marker) => vmNamespace === undefined || marker.namespace === vmNamespace,
        timeoutMs: periodMs,
      });
      metrics?.orphanScans.inc({ pool: host.pool, result: 'success' });
    } catch (error) {
      metrics?.orphanScans.inc({ pool: host.pool, result: 'error' });
      logger.warn({ pool: host.pool, host: host.name, err: error }, 'orphan domain scan failed');
    }
  }

  /** A Warning Event naming orphans that appeared, a Normal one naming those gone; nothing when unchanged. */
  private reportOrphanChanges(pool: PoolObject, hosts: FleetHost[]): void {
    const name = pool.metadata.name ?? '';
    const current = new Map<string, { host: string; uri: string; orphan: OrphanDomain }>();
    for (const host of hosts) {
      for (const orphan of this.scans.get(host)?.orphans ?? [])
        current.set(`${host.name}/${orphan.uuid}`, { host: host.name, uri: host.uri, orphan });
    }
    const previous = this.reportedOrphans.get(name) ?? new Map();
    this.reportedOrphans.set(name, current);
    const byHost = (entries: Array<{ host: string; uri: string; orphan: OrphanDomain }>): HostOrphans[] => {
      const grouped = new Map<string, HostOrphans>();
      for (const { host, uri, orphan } of entries) {
        const group = grouped.get(host) ?? { host, uri, orphans: [] };
        group.orphans.push(orphan);
        grouped.set(host, group);
      }
      return [...grouped.values()];
    };
    const appeared = [...current].filter(([key]) => !previous.has(key)).map(([, entry]) => entry);
    // Only from hosts still scanned under the same URI: a host that left the pool (or changed
    // URI) says nothing about its domains.
    const scanned = new Set(
      hosts.filter((host) => this.scans.get(host)?.orphans).map((host) => `${host.name} ${host.uri}`),
    );
    const gone = [...previous]
      .filter(([key, entry]) => !current.has(key) && scanned.has(`${entry.host} ${entry.uri}`))
      .map(([, entry]) => entry);
    const events = this.options.events;
    if (!events) return;
    if (appeared.length > 0) {
      void events.record(
        pool,
        'Warning',
        POOL_EVENTS.OrphanDomainsFound,
        `${appeared.length} domain${appeared.length === 1 ? '' : 's'} with virtfleet's marker but no VirtualMachine (not touched; see condition OrphanDomains): ${orphanList(byHost(appeared))}`,
      );
    }
    if (gone.length > 0) {
      void events.record(
        pool,
        'Normal',
        POOL_EVENTS.OrphanDomainsGone,
        `no longer on their hosts: ${orphanList(byHost(gone))}`,
      );
    }
  }

  /** Per-host gauges for every host the Fleet has in the pool (removed hosts that still have VMs included). */
  private reportMetrics(pool: string, allocations: Map<string, HostAllocation>): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const before = this.metricHosts.get(pool) ?? new Set<string>();
    const now = new Set<string>();
    for (const host of this.options.fleet.hosts(pool)) {
      now.add(host.name);
      const labels = { pool, host: host.name };
      const allocation = allocations.get(host.name);
      metrics.hostReady.set(labels, host.inSpec && host.readiness.ready ? 1 : 0);
      metrics.hostVms.set(labels, allocation?.vms.length ?? 0);
      metrics.hostAllocatedCpus.set(labels, allocation?.cpus ?? 0);
      metrics.hostAllocatedMemory.set(labels, allocation?.memoryBytes ?? 0);
      if (host.facts) {
        metrics.hostCapacityCpus.set(labels, host.facts.cpu.count);
        metrics.hostCapacityMemory.set(labels, host.facts.memoryBytes);
      } else {
        metrics.hostCapacityCpus.remove(labels);
        metrics.hostCapacityMemory.remove(labels);
      }
      const orphans = this.scans.get(host)?.orphans;
      if (orphans) metrics.orphanDomains.set(labels, orphans.length);
      else metrics.orphanDomains.remove(labels);
    }
    for (const host of before) if (!now.has(host)) metrics.forgetHost(pool, host);
    if (now.size > 0) this.metricHosts.set(pool, now);
    else this.metricHosts.delete(pool);
  }

  /** Hosts that left spec.hosts go once no VM is placed on them; the rest are reported. */
  private releaseRemovedHosts(
    pool: string,
    allocations: Map<string, { vms: string[] }>,
  ): Array<{ host: string; vms: string[] }> {
    const blocked: Array<{ host: string; vms: string[] }> = [];
    for (const host of this.options.fleet.hosts(pool)) {
      if (host.inSpec) continue;
      const vms = allocations.get(host.name)?.vms ?? [];
      if (vms.length > 0) blocked.push({ host: host.name, vms });
      else this.options.fleet.removeHost(pool, host.name);
    }
    return blocked;
  }

  /** Hosts with a credentialsSecretRef are contacted only once their Secret is usable. */
  private checkCredentials(host: FleetHost): void {
    if (!host.credentialsSecret) {
      host.credentialsProblem = undefined;
      return;
    }
    const resolution = resolveCredentials(
      host.uri,
      host.credentialsSecret,
      this.options.credentialsNamespace,
      this.options.secrets,
    );
    if (resolution.ok) {
      host.credentialsProblem = undefined;
      this.options.fleet.connect(host);
    } else {
      host.credentialsProblem = { reason: resolution.reason, message: resolution.message };
    }
  }

  /**
   * One libvirt call per due host: its facts on first contact and after a reconnect, otherwise
   * a domain list. A call that does not answer within the period counts as a missed beat.
   */
  private async beatIfDue(host: FleetHost, periodMs: number): Promise<void> {
    // Hosts with a credentials problem are not contacted (hostReadiness says why); lastBeatAt is
    // 0 before first contact and after a reconnect (Fleet), so those go at once.
    const now = this.now();
    if (!beatDue(host, periodMs, now)) return;
    host.lastBeatAt = now;
    const hypervisor = this.options.fleet.hypervisor(host.uri);
    try {
      if (host.factsStale || !host.facts) {
        host.facts = await withDeadline(hypervisor.facts(), periodMs, `read facts of ${host.uri}`);
        host.factsStale = false;
        // First contact or back after a loss: domains may have come or gone meanwhile.
        this.scanOf(host).due = true;
      } else {
        // A heartbeat costs one small round trip, however many domains the host runs.
        await withDeadline(hypervisor.ping(), periodMs, `heartbeat to ${host.uri}`);
      }
      host.missedBeats = 0;
      host.lastError = undefined;
    } catch (error) {
      host.missedBeats++;
      // Without the connection pool's countdown ("; next attempt in 159 ms"): the message goes
      // into status, which must not change on every beat while the host stays down.
      host.lastError = errorText(error).replace(/; next attempt in \d+ ms/g, '');
      this.options.logger.warn(
        { pool: host.pool, host: host.name, missedBeats: host.missedBeats, err: error },
        'heartbeat missed',
      );
    }
  }
}

/** How long VM changes are gathered before their pool is reconciled (sources.ts delayMs). */
const VM_CHANGE_BATCH_MS = 500;

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Keys of the pools a VM counts against: allocation and VM counts follow its placement. */
function poolOfVm(vm: VmObject): string[] {
  return [vm.spec.hostPoolRef.name];
}

/** Pools with a host whose credentialsSecretRef names the Secret. */
function poolsOfSecret(pools: Informer<PoolObject>): (secret: SecretObject) => string[] {
  return (secret) =>
    pools
      .list()
      .filter((pool) =>
        pool.spec.hosts.some(
          (host) =>
            host.credentialsSecretRef?.name === secret.metadata?.name &&
            host.credentialsSecretRef?.namespace === secret.metadata?.namespace,
        ),
      )
      .map((pool) => pool.metadata.name ?? '');
}

/**
 * Domain events that may change a host's orphans ask for a scan of that host and enqueue its
 * pools: events of a UUID that is no cached VM's (a VM's own domain events are the VM
 * controller's business), except those of domains already known not to be virtfleet's
 * (unless redefined). A deleted VM asks for a scan of its host: its domain is normally gone
 * first, but not when its finalizer was removed by hand.
 */
function orphanTriggers(options: HostPoolControllerOptions, reconciler: HostPoolReconciler): Source {
  const { fleet, pools, vms } = options;
  return async (controller, signal) => {
    const uids = new Set<string>();
    const offVms = vms.on((event) => {
      const uid = event.object.metadata.uid ?? '';
      if (event.type !== 'delete') {
        uids.add(uid);
        return;
      }
      uids.delete(uid);
      const poolName = event.object.spec.hostPoolRef.name;
      const hostName = options.allocations.hostOf(event.object);
      const host = hostName ? fleet.host(poolName, hostName) : undefined;
      if (host) reconciler.scanOf(host).due = true; // watchMapped enqueues the pool
    });
    for (const vm of vms.list()) uids.add(vm.metadata.uid ?? '');
    const offFleet = fleet.onDomainEvent((uid, event, uri) => {
      if (event.type !== 'lifecycle' || uids.has(uid)) return;
      for (const pool of pools.list()) {
        const poolName = pool.metadata.name ?? '';
        for (const host of fleet.hosts(poolName)) {
          if (host.uri !== uri) continue;
          const scan = reconciler.scanOf(host);
          if (scan.isForeign(uid) && event.event !== 'defined') continue;
          scan.due = true;
          controller.enqueue(poolName);
        }
      }
    });
    await untilAborted(signal);
    offVms();
    offFleet();
  };
}

export function hostPoolController(options: HostPoolControllerOptions & { concurrency?: number }): Controller {
  const { fleet, secrets, credentialsNamespace } = options;
  fleet.useCredentials((host) =>
    host.credentialsSecret
      ? resolveCredentials(host.uri, host.credentialsSecret, credentialsNamespace, secrets)
      : { ok: true, credentials: {} },
  );
  // Connection events only enqueue the pool; the reconcile decides what they mean.
  const hostEvents: Source = async (controller, signal) => {
    const off = fleet.onPoolEvent((pool) => controller.enqueue(pool));
    await untilAborted(signal);
    off();
  };
  const reconciler = new HostPoolReconciler(options);
  return new Controller({
    name: 'hostpool',
    reconciler,
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    concurrency: options.concurrency ?? 4,
    sources: [
      watchOwn(options.pools),
      // VM changes only change the pool's counts (allocated CPU and memory, VMs per host): a
      // burst of them is summed up in one status write, not one per VM.
      watchMapped(options.vms, poolOfVm, { delayMs: VM_CHANGE_BATCH_MS }),
      hostEvents,
      orphanTriggers(options, reconciler),
      async (controller, signal) => {
        const wake = (pool: string) => controller.enqueue(pool);
        reconciler.wakers.add(wake);
        await untilAborted(signal);
        reconciler.wakers.delete(wake);
      },
      ...(secrets ? [watchMapped(secrets, poolsOfSecret(options.pools))] : []),
    ],
  });
}
