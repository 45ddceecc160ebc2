// The HostPool controller (key: the pool's name; HostPools are cluster-scoped).
//
//   get (gone → let its hosts go once they have no VMs) → hosts in the Fleet match spec.hosts
//   → heartbeat each host that is due (facts on first contact and after a reconnect)
//   → readiness per host → status (only when changed) → come back at the next heartbeat.
//
// Heartbeats are libvirt calls, never API calls, and status holds no per-beat timestamps: a
// steady pool writes nothing.
import type { Logger } from '../observability/logging.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import { Controller } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeClient } from '../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../runtime/reconciler.js';
import { watchMapped, watchOwn, type Source } from '../runtime/sources.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import type { Allocations } from './allocations.js';
import type { Fleet, FleetHost } from './fleet.js';
import { hostReadiness, poolStatus } from './pool-status.js';
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
}

export class HostPoolReconciler implements Reconciler {
  constructor(private readonly options: HostPoolControllerOptions) {}

  async reconcile({ key }: ReconcileContext): Promise<ReconcileResult | void> {
    const { pools, fleet } = this.options;
    const pool = pools.get(key);
    const gone = !pool || Boolean(pool.metadata.deletionTimestamp);
    fleet.syncPool(key, gone ? [] : pool.spec.hosts);
    const allocations = this.options.allocations.byHost(key);
    const blockedRemovals = this.releaseRemovedHosts(key, allocations);
    if (gone) return;

    const spec = pool.spec;
    const periodMs = spec.failureDetection.heartbeatPeriodSeconds * 1000;
    const hosts = spec.hosts.map((declared) => fleet.host(key, declared.name)).filter((host): host is FleetHost => host !== undefined);
    for (const host of hosts) this.checkCredentials(host);
    await Promise.all(hosts.map((host) => this.beatIfDue(host, periodMs)));
    const changed: string[] = [];
    for (const host of hosts) {
      const next = hostReadiness(host, spec.failureDetection.failureThreshold);
      if (next.ready !== host.readiness.ready || next.hypervisor !== host.readiness.hypervisor) changed.push(host.name);
      host.readiness = next;
    }
    fleet.readinessChanged(key, changed);

    const status = poolStatus({ generation: pool.metadata.generation, previous: pool.status, hosts, allocations, blockedRemovals });
    await patchStatusIfChanged(this.options.client, HOST_POOL, pool as PoolObject & { status?: Record<string, unknown> }, status as Record<string, unknown>);
    return { requeueAfterMs: nextBeatIn(hosts, periodMs) };
  }

  /** Hosts that left spec.hosts go once no VM is placed on them; the rest are reported. */
  private releaseRemovedHosts(pool: string, allocations: Map<string, { vms: string[] }>): Array<{ host: string; vms: string[] }> {
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
    const resolution = resolveCredentials(host.uri, host.credentialsSecret, this.options.credentialsNamespace, this.options.secrets);
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
    if (host.credentialsProblem) return; // not contacted; hostReadiness says why
    const now = Date.now();
    // lastBeatAt is 0 before first contact and after a reconnect (Fleet), so those go at once.
    if (now - host.lastBeatAt < periodMs) return;
    host.lastBeatAt = now;
    const hypervisor = this.options.fleet.hypervisor(host.uri);
    try {
      if (host.factsStale || !host.facts) {
        host.facts = await withDeadline(hypervisor.facts(), periodMs, `read facts of ${host.uri}`);
        host.factsStale = false;
      } else {
        // A heartbeat costs one small round trip, however many domains the host runs.
        await withDeadline(hypervisor.ping(), periodMs, `heartbeat to ${host.uri}`);
      }
      host.missedBeats = 0;
      host.lastError = undefined;
    } catch (error) {
      host.missedBeats++;
      host.lastError = error instanceof Error ? error.message : String(error);
      this.options.logger.warn({ pool: host.pool, host: host.name, missedBeats: host.missedBeats, err: error }, 'heartbeat missed');
    }
  }
}

function nextBeatIn(hosts: FleetHost[], periodMs: number): number {
  const now = Date.now();
  const due = hosts.filter((host) => !host.credentialsProblem).map((host) => host.lastBeatAt + periodMs - now);
  return Math.max(50, Math.min(periodMs, ...due));
}

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
      .filter((pool) => pool.spec.hosts.some((host) => host.credentialsSecretRef?.name === secret.metadata?.name && host.credentialsSecretRef?.namespace === secret.metadata?.namespace))
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
  return new Controller({
    name: 'hostpool',
    reconciler: new HostPoolReconciler(options),
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    concurrency: options.concurrency ?? 4,
    sources: [watchOwn(options.pools), watchMapped(options.vms, poolOfVm), hostEvents, ...(secrets ? [watchMapped(secrets, poolsOfSecret(options.pools))] : [])],
  });
}
