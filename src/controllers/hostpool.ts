// The HostPool controller (key: the pool's name; HostPools are cluster-scoped).
//
//   get (gone → let its hosts go once they have no VMs) → hosts in the Fleet match spec.hosts
//   → heartbeat each host that is due (hosts/heartbeat.ts; facts on first contact and after a
//   reconnect) → scan the hosts that are due for orphan domains (hostpool-orphans.ts; and report
//   copies of VMs that live elsewhere now to the VM controller) → each host's verdict: readiness
//   (pool-status.ts), fencing of failed hosts that still have VMs (hostpool-fencing.ts), handed
//   to the Fleet whole → status (only when changed), an Event when the orphans changed, per-host
//   metrics (hostpool-metrics.ts) → come back at the next heartbeat.
//
// Heartbeats and scans are libvirt calls, never API calls, and no heartbeat alone writes
// status: status.hosts[].lastHeartbeatTime is brought up to date only by a write that happens
// for another reason, so a steady pool writes nothing.
//
// The controller never reads VM condition text and never touches a VM's domain: a drain's
// given-up migrations are counted by the condition's reason, and copies of VMs found on the
// wrong host are reported to the VM controller, whose copies step removes them.
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
import { untilAborted } from '../runtime/abort.js';
import type { Fleet, FleetHost } from '../hosts/fleet.js';
import { nextVerdict } from '../hosts/fleet-host.js';
import { heartbeat } from '../hosts/heartbeat.js';
import type { Allocations, HostAllocation } from './allocations.js';
import type { OrphanDomain } from './orphan-domains.js';
import { hostReadiness, poolStatus, statusChanged, withHeartbeatTimes, type DrainProgress } from './pool-status.js';
import { HostFencer } from './hostpool-fencing.js';
import { PoolMetrics } from './hostpool-metrics.js';
import { PoolOrphans } from './hostpool-orphans.js';
import { beatDue, nextBeatIn } from './heartbeats.js';
import { VM_REASONS } from './reasons.js';
import { HOST_POOL, type PoolObject, type VmObject } from './resources.js';
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
  /** Called with a pool name when something done in the background (fencing) needs a reconcile. */
  readonly wakers = new Set<(pool: string) => void>();
  readonly orphans: PoolOrphans;
  private readonly fencer: HostFencer;
  private readonly metrics: PoolMetrics | undefined;
  private readonly now: () => number;

  constructor(private readonly options: HostPoolControllerOptions) {
    this.now = options.now ?? Date.now;
    this.orphans = new PoolOrphans(options, options.orphanScanIntervalMs ?? DEFAULT_ORPHAN_SCAN_INTERVAL_MS, this.now);
    this.fencer = new HostFencer(
      options,
      this.now,
      (pool) => {
        for (const wake of this.wakers) wake(pool);
      },
      (host, fencing) => {
        const { verdict } = host;
        options.fleet.judge(host.pool, new Map([[host, nextVerdict(verdict, verdict.readiness, fencing, this.now())]]));
      },
    );
    this.metrics = options.metrics && new PoolMetrics(options.metrics, options.fleet, this.orphans);
  }

  async reconcile({ key }: ReconcileContext): Promise<ReconcileResult | void> {
    const { pools, fleet } = this.options;
    const pool = pools.get(key);
    const gone = !pool || Boolean(pool.metadata.deletionTimestamp);
    fleet.syncPool(key, gone ? [] : pool.spec.hosts);
    const allocations = this.options.allocations.byHost(key);
    const blockedRemovals = this.releaseRemovedHosts(key, allocations);
    if (gone) {
      this.metrics?.report(key, allocations);
      if (fleet.hosts(key).length === 0) this.orphans.forgetPool(key);
      return;
    }

    const spec = pool.spec;
    const periodMs = spec.failureDetection.heartbeatPeriodSeconds * 1000;
    const hosts = spec.hosts
      .map((declared) => fleet.host(key, declared.name))
      .filter((host): host is FleetHost => host !== undefined);
    for (const host of hosts) this.checkCredentials(host);
    await Promise.all(hosts.map((host) => this.beatIfDue(host, periodMs)));
    await this.orphans.scanDue(pool, hosts, periodMs);
    this.judge(pool, hosts, allocations);

    const orphans = new Map<string, OrphanDomain[]>();
    for (const host of hosts) {
      const found = this.orphans.orphansOf(host);
      if (found) orphans.set(host.name, found);
    }
    const computed = poolStatus({
      generation: pool.metadata.generation,
      previous: pool.status,
      hosts,
      allocations,
      blockedRemovals,
      orphans,
      maintenance: this.drainProgress(hosts, allocations),
    });
    // Heartbeat times go in only with a write that happens anyway: never one write per beat.
    const status = statusChanged(pool.status, computed) ? withHeartbeatTimes(computed, hosts) : computed;
    // Metrics first: whoever sees the new status through a watch finds them up to date.
    this.metrics?.report(key, allocations);
    await patchStatusIfChanged(
      this.options.client,
      HOST_POOL,
      pool as PoolObject & { status?: Record<string, unknown> },
      status as Record<string, unknown>,
    );
    this.orphans.reportChanges(pool, hosts);
    const retries = hosts.flatMap(({ verdict: { fencing } }) =>
      fencing?.state === 'Failed' && fencing.retryAt ? [Math.max(0, fencing.retryAt - this.now())] : [],
    );
    const observed = hosts.map((host) => host.observed);
    return { requeueAfterMs: Math.min(nextBeatIn(observed, periodMs, this.now()), ...retries) };
  }

  /**
   * Each host's verdict, from what was observed: readiness, then fencing of the failed hosts
   * that still have VMs (hostpool-fencing.ts); handed to the Fleet whole.
   */
  private judge(pool: PoolObject, hosts: FleetHost[], allocations: Map<string, HostAllocation>): void {
    const threshold = pool.spec.failureDetection.failureThreshold;
    const readiness = new Map(hosts.map((host) => [host, hostReadiness(host, threshold)]));
    this.fencer.fence(pool, readiness, allocations);
    const now = this.now();
    const verdicts = new Map(
      [...readiness].map(([host, next]) => [host, nextVerdict(host.verdict, next, this.fencer.stateOf(host), now)]),
    );
    this.options.fleet.judge(pool.metadata.name ?? '', verdicts);
  }

  /**
   * Hosts in maintenance and how far their drain is: VMs still placed there, of which migrating
   * now, and those whose migration gave up or was refused (by the Migrating condition's reason).
   */
  private drainProgress(hosts: FleetHost[], allocations: Map<string, HostAllocation>): DrainProgress[] {
    return hosts
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
                (c) =>
                  c.type === 'Migrating' &&
                  (c.reason === VM_REASONS.MigrationGaveUp || c.reason === VM_REASONS.MigrationRefused),
              ),
            )
            .map((vm) => vm!.metadata.name ?? ''),
        };
      });
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
      host.observed.credentialsProblem = undefined;
      return;
    }
    const resolution = resolveCredentials(
      host.uri,
      host.credentialsSecret,
      this.options.credentialsNamespace,
      this.options.secrets,
    );
    if (resolution.ok) {
      host.observed.credentialsProblem = undefined;
      this.options.fleet.connect(host);
    } else {
      host.observed.credentialsProblem = { reason: resolution.reason, message: resolution.message };
    }
  }

  /** One libvirt call per due host (hosts/heartbeat.ts); a host whose facts were read is scanned for orphans. */
  private async beatIfDue(host: FleetHost, periodMs: number): Promise<void> {
    // Hosts with a credentials problem are not contacted (hostReadiness says why); lastBeatAt is
    // 0 before first contact and after a reconnect (Fleet), so those go at once.
    if (!beatDue(host.observed, periodMs, this.now())) return;
    const { fleet, logger } = this.options;
    const hypervisors = { control: fleet.hypervisor(host.uri), heartbeat: fleet.hypervisor(host.uri, 'heartbeat') };
    const outcome = await heartbeat(host, hypervisors, periodMs, this.now);
    // First contact or back after a loss: domains may have come or gone meanwhile.
    if (outcome.answered && outcome.factsRead) this.orphans.scanOf(host).due = true;
    if (!outcome.answered)
      logger.warn(
        { pool: host.pool, host: host.name, missedBeats: host.observed.missedBeats, err: outcome.error },
        'heartbeat missed',
      );
  }
}

/** How long VM changes are gathered before their pool is reconciled (sources.ts delayMs). */
const VM_CHANGE_BATCH_MS = 500;

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
      reconciler.orphans.triggers(),
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
