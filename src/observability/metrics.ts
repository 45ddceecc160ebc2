// The controller's Prometheus metrics (prom-client), in one registry that
// /metrics serves. Names follow controller-runtime's, under a virtfleet_ prefix.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What observeKubeClient needs of a client: the one method every request goes through. */
interface RequestingClient {
  request<T>(method: string, path: string, options?: Record<string, unknown>): Promise<T>;
}

const VERBS: Record<string, [single: string, collection: string]> = {
  GET: ['get', 'list'],
  POST: ['create', 'create'],
  PUT: ['update', 'update'],
  PATCH: ['patch', 'patch'],
  DELETE: ['delete', 'deletecollection'],
};

/**
 * Verb and resource of a request path: `/apis/g/v[/namespaces/ns]/plural[/name[/sub]]` →
 * (`get`, `plural[/sub]`). Object names are left out, so the labels stay few.
 */
export function requestLabels(method: string, path: string): { verb: string; resource: string } {
  const segments = path.split('?')[0]!.split('/').filter(Boolean);
  let rest = segments[0] === 'api' ? segments.slice(2) : segments[0] === 'apis' ? segments.slice(3) : segments;
  // namespaces/NS/PLURAL…, but not a Namespace's own subresources (namespaces/NS/status, …/finalize).
  if (
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))
  )
    rest = rest.slice(2);
  const [plural = 'unknown', name, subresource] = rest;
  const verbs = VERBS[method.toUpperCase()];
  const verb = verbs ? verbs[name === undefined ? 1 : 0] : method.toLowerCase();
  return { verb, resource: subresource ? `${plural}/${subresource}` : plural };
}

/** One VM as the VM gauges see it. */
export interface VmSample {
  namespace: string;
  name: string;
  phase: string;
  ready: boolean;
  /** Its runStrategy (and any operation on it) wants it running: it has a virtfleet_vm_ready series. */
  meantToRun: boolean;
  /** Its OS install (spec.install) is under way: not Ready by design, and bounded by the install's timeout. */
  installing: boolean;
}

export class ControllerMetrics {
  readonly registry: Registry;
  readonly queueDepth: Gauge<'controller'>;
  readonly queueAdds: Counter<'controller'>;
  readonly queueRetries: Counter<'controller'>;
  readonly queueLatency: Histogram<'controller'>;
  readonly workDuration: Histogram<'controller'>;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly leader: Gauge<'lease'>;
  readonly kubeRequests: Counter<'verb' | 'resource' | 'code'>;
  readonly hostReady: Gauge<'pool' | 'host'>;
  readonly hostVms: Gauge<'pool' | 'host'>;
  readonly hostAllocatedCpus: Gauge<'pool' | 'host'>;
  readonly hostAllocatedMemory: Gauge<'pool' | 'host'>;
  readonly hostCapacityCpus: Gauge<'pool' | 'host'>;
  readonly hostCapacityMemory: Gauge<'pool' | 'host'>;
  readonly orphanDomains: Gauge<'pool' | 'host'>;
  readonly orphanScans: Counter<'pool' | 'result'>;
  readonly vmRestarts: Counter<'namespace' | 'name' | 'reason'>;
  readonly vmRecoveryBlocked: Gauge<'namespace' | 'name' | 'reason'>;
  readonly vmSplitBrain: Counter<'namespace' | 'name'>;
  readonly fencingActions: Counter<'pool' | 'host' | 'result'>;
  readonly recoveryDuration: Histogram<'kind'>;
  readonly migrationDuration: Histogram<'outcome'>;
  readonly migrations: Counter<'namespace' | 'name' | 'outcome'>;
  /** What the VM gauges are computed from at each scrape (set by the VM controller's wiring). */
  private vmSource: () => VmSample[] = () => [];
  private readonly observedClients = new WeakSet<object>();

  constructor(registry: Registry = new Registry(), { processMetrics = true } = {}) {
    this.registry = registry;
    if (processMetrics) {
      collectDefaultMetrics({ register: registry, prefix: 'virtfleet_' });
      // These three are gauges named like counters; promtool (rightly) flags
      // them, and the count of active handles says little about a controller.
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ]) {
        registry.removeSingleMetric(`virtfleet_${name}`);
      }
    }
    const registers = [registry];
    const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.queueDepth = new Gauge({
      name: 'virtfleet_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      labelNames: ['controller'],
      registers,
    });
    this.queueAdds = new Counter({
      name: 'virtfleet_workqueue_adds_total',
      help: 'Keys added to the work queue.',
      labelNames: ['controller'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'virtfleet_workqueue_retries_total',
      help: 'Keys re-added after a failed reconcile.',
      labelNames: ['controller'],
      registers,
    });
    this.queueLatency = new Histogram({
      name: 'virtfleet_workqueue_queue_duration_seconds',
      help: 'How long a key waited in the queue before its reconcile started.',
      labelNames: ['controller'],
      buckets,
      registers,
    });
    this.workDuration = new Histogram({
      name: 'virtfleet_workqueue_work_duration_seconds',
      help: 'How long processing a key took, reconcile and bookkeeping.',
      labelNames: ['controller'],
      buckets,
      registers,
    });
    this.reconcileTotal = new Counter({
      name: 'virtfleet_reconcile_total',
      help: 'Reconciles by outcome: success, requeue_after, error, terminal_error.',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'virtfleet_reconcile_errors_total',
      help: 'Reconciles that ended in an error.',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'virtfleet_reconcile_duration_seconds',
      help: 'Duration of one reconcile.',
      labelNames: ['controller'],
      buckets,
      registers,
    });
    this.leader = new Gauge({
      name: 'virtfleet_leader',
      help: '1 while this process holds the leader lease, else 0.',
      labelNames: ['lease'],
      registers,
    });
    this.kubeRequests = new Counter({
      name: 'virtfleet_kube_requests_total',
      help: 'Requests to the Kubernetes API server (watches excluded) by verb, resource and code: the HTTP status of a refused request, 2xx for a successful one, <error> when none came back.',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    });
    const host = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: ['pool', 'host'] as const, registers });
    this.hostReady = host(
      'virtfleet_host_ready',
      '1 while the host is ready (answers heartbeats, takes VMs), else 0; see the HostPool status for why.',
    );
    this.hostVms = host('virtfleet_host_vms', 'VirtualMachines placed on the host.');
    this.hostAllocatedCpus = host('virtfleet_host_allocated_cpus', 'vCPUs given to the VMs placed on the host.');
    this.hostAllocatedMemory = host(
      'virtfleet_host_allocated_memory_bytes',
      'Memory given to the VMs placed on the host.',
    );
    this.hostCapacityCpus = host('virtfleet_host_capacity_cpus', 'CPUs of the host, as libvirt reports them.');
    this.hostCapacityMemory = host(
      'virtfleet_host_capacity_memory_bytes',
      'Memory of the host, as libvirt reports it.',
    );
    this.orphanDomains = host(
      'virtfleet_orphan_domains',
      "Domains on the host with virtfleet's marker but no VirtualMachine (reported, never destroyed).",
    );
    this.orphanScans = new Counter({
      name: 'virtfleet_orphan_scans_total',
      help: 'Scans of hosts for orphan domains, by result (success, error).',
      labelNames: ['pool', 'result'],
      registers,
    });

    // VM gauges are read off the cache at scrape time: always current, no bookkeeping to leak.
    const samples = () => this.vmSource();
    new Gauge({
      name: 'virtfleet_vms',
      help: 'VirtualMachines by status.phase.',
      labelNames: ['phase'] as const,
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const vm of samples()) counts.set(vm.phase, (counts.get(vm.phase) ?? 0) + 1);
        for (const [phase, count] of counts) this.set({ phase }, count);
      },
    });
    new Gauge({
      name: 'virtfleet_vm_ready',
      help: '1 while the VM is Ready, else 0; only VMs meant to run (runStrategy Always or RerunOnFailure, Manual once started; not those stopped or paused on request).',
      labelNames: ['namespace', 'name'] as const,
      registers,
      collect() {
        this.reset();
        for (const vm of samples())
          if (vm.meantToRun) this.set({ namespace: vm.namespace, name: vm.name }, vm.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'virtfleet_vm_crash_looping',
      help: '1 while the VM waits in CrashLoopBackOff, else 0; VMs meant to run only.',
      labelNames: ['namespace', 'name'] as const,
      registers,
      collect() {
        this.reset();
        for (const vm of samples())
          if (vm.meantToRun)
            this.set({ namespace: vm.namespace, name: vm.name }, vm.phase === 'CrashLoopBackOff' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'virtfleet_vm_phase',
      help: "1 for the VM's current status.phase (one series per VM; a phase change replaces it), so a VM stuck in a phase can be told from churn.",
      labelNames: ['namespace', 'name', 'phase'] as const,
      registers,
      collect() {
        this.reset();
        for (const vm of samples()) this.set({ namespace: vm.namespace, name: vm.name, phase: vm.phase }, 1);
      },
    });
    new Gauge({
      name: 'virtfleet_vm_installing',
      help: "1 while the VM's OS install (spec.install) is under way (the installer runs, its media are put on the host, or it waits its turn for a MAC), else 0; VMs meant to run only.",
      labelNames: ['namespace', 'name'] as const,
      registers,
      collect() {
        this.reset();
        for (const vm of samples())
          if (vm.meantToRun) this.set({ namespace: vm.namespace, name: vm.name }, vm.installing ? 1 : 0);
      },
    });
    this.vmRestarts = new Counter({
      name: 'virtfleet_vm_restarts_total',
      help: 'Restarts of a VM by the controller after failures, by reason: crash (went down unasked), probe (health check failed), host_failure (started on another host).',
      labelNames: ['namespace', 'name', 'reason'],
      registers,
    });
    this.vmRecoveryBlocked = new Gauge({
      name: 'virtfleet_vm_recovery_blocked',
      help: '1 while a VM of a failed host waits because its old copy is not known dead (reason: no_fencing, fencing_failed).',
      labelNames: ['namespace', 'name', 'reason'],
      registers,
    });
    this.vmSplitBrain = new Counter({
      name: 'virtfleet_vm_split_brain_total',
      help: 'Times two running copies of one VM were found (and all but one destroyed, by the rule in docs/controllers.md).',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.fencingActions = new Counter({
      name: 'virtfleet_fencing_actions_total',
      help: 'Fencing commands run for failed hosts, by result (success, failure).',
      labelNames: ['pool', 'host', 'result'],
      registers,
    });
    const recoveryBuckets = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
    this.recoveryDuration = new Histogram({
      name: 'virtfleet_recovery_duration_seconds',
      help: 'From a failure seen (a crash, a host declared failed) to the VM started again, by kind (crash, host).',
      labelNames: ['kind'],
      buckets: recoveryBuckets,
      registers,
    });
    this.migrationDuration = new Histogram({
      name: 'virtfleet_migration_duration_seconds',
      help: 'Live migrations from start to end, by outcome (success, failure, aborted).',
      labelNames: ['outcome'],
      buckets: recoveryBuckets,
      registers,
    });
    this.migrations = new Counter({
      name: 'virtfleet_migrations_total',
      help: 'Live migrations of a VM by outcome (success, failure, aborted).',
      labelNames: ['namespace', 'name', 'outcome'],
      registers,
    });
  }

  /** Where the VM gauges come from (the VM controller's cache). */
  observeVms(source: () => VmSample[]): void {
    this.vmSource = source;
  }

  /**
   * Counts the client's requests in virtfleet_kube_requests_total. The client is wrapped where
   * every request passes (its request method), once however often this is called.
   */
  observeKubeClient(client: RequestingClient): void {
    if (this.observedClients.has(client)) return;
    this.observedClients.add(client);
    const request = client.request.bind(client);
    const counter = this.kubeRequests;
    client.request = async function observed<T>(
      method: string,
      path: string,
      options?: Record<string, unknown>,
    ): Promise<T> {
      const labels = requestLabels(method, path);
      try {
        const result = await request<T>(method, path, options);
        counter.inc({ ...labels, code: '2xx' });
        return result;
      } catch (error) {
        const status = (error as { status?: unknown }).status;
        counter.inc({ ...labels, code: typeof status === 'number' ? String(status) : '<error>' });
        throw error;
      }
    };
  }

  /** Drops the per-host series of a host that left its pool (or of a pool that is gone). */
  forgetHost(pool: string, host: string): void {
    for (const gauge of [
      this.hostReady,
      this.hostVms,
      this.hostAllocatedCpus,
      this.hostAllocatedMemory,
      this.hostCapacityCpus,
      this.hostCapacityMemory,
      this.orphanDomains,
    ]) {
      gauge.remove({ pool, host });
    }
  }
}
