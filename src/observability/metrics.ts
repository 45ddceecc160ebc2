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
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) rest = rest.slice(2);
  const [plural = 'unknown', name, subresource] = rest;
  const verbs = VERBS[method.toUpperCase()];
  const verb = verbs ? verbs[name === undefined ? 1 : 0] : method.toLowerCase();
  return { verb, resource: subresource ? `${plural}/${subresource}` : plural };
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
  private readonly observedClients = new WeakSet<object>();

  constructor(registry: Registry = new Registry(), { processMetrics = true } = {}) {
    this.registry = registry;
    if (processMetrics) {
      collectDefaultMetrics({ register: registry, prefix: 'virtfleet_' });
      // These three are gauges named like counters; promtool (rightly) flags
      // them, and the count of active handles says little about a controller.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        registry.removeSingleMetric(`virtfleet_${name}`);
      }
    }
    const registers = [registry];
    const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.queueDepth = new Gauge({ name: 'virtfleet_workqueue_depth', help: 'Keys waiting in the work queue.', labelNames: ['controller'], registers });
    this.queueAdds = new Counter({ name: 'virtfleet_workqueue_adds_total', help: 'Keys added to the work queue.', labelNames: ['controller'], registers });
    this.queueRetries = new Counter({ name: 'virtfleet_workqueue_retries_total', help: 'Keys re-added after a failed reconcile.', labelNames: ['controller'], registers });
    this.queueLatency = new Histogram({ name: 'virtfleet_workqueue_queue_duration_seconds', help: 'How long a key waited in the queue before its reconcile started.', labelNames: ['controller'], buckets, registers });
    this.workDuration = new Histogram({ name: 'virtfleet_workqueue_work_duration_seconds', help: 'How long processing a key took, reconcile and bookkeeping.', labelNames: ['controller'], buckets, registers });
    this.reconcileTotal = new Counter({ name: 'virtfleet_reconcile_total', help: 'Reconciles by outcome: success, requeue_after, error, terminal_error.', labelNames: ['controller', 'result'], registers });
    this.reconcileErrors = new Counter({ name: 'virtfleet_reconcile_errors_total', help: 'Reconciles that ended in an error.', labelNames: ['controller'], registers });
    this.reconcileDuration = new Histogram({ name: 'virtfleet_reconcile_duration_seconds', help: 'Duration of one reconcile.', labelNames: ['controller'], buckets, registers });
    this.leader = new Gauge({ name: 'virtfleet_leader', help: '1 while this process holds the leader lease, else 0.', labelNames: ['lease'], registers });
    this.kubeRequests = new Counter({
      name: 'virtfleet_kube_requests_total',
      help: 'Requests to the Kubernetes API server (watches excluded) by verb, resource and code: the HTTP status of a refused request, 2xx for a successful one, <error> when none came back.',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    });
    const host = (name: string, help: string) => new Gauge({ name, help, labelNames: ['pool', 'host'] as const, registers });
    this.hostReady = host('virtfleet_host_ready', '1 while the host is ready (answers heartbeats, takes VMs), else 0; see the HostPool status for why.');
    this.hostVms = host('virtfleet_host_vms', 'VirtualMachines placed on the host.');
    this.hostAllocatedCpus = host('virtfleet_host_allocated_cpus', 'vCPUs given to the VMs placed on the host.');
    this.hostAllocatedMemory = host('virtfleet_host_allocated_memory_bytes', 'Memory given to the VMs placed on the host.');
    this.hostCapacityCpus = host('virtfleet_host_capacity_cpus', 'CPUs of the host, as libvirt reports them.');
    this.hostCapacityMemory = host('virtfleet_host_capacity_memory_bytes', 'Memory of the host, as libvirt reports it.');
    this.orphanDomains = host('virtfleet_orphan_domains', 'Domains on the host with virtfleet\'s marker but no VirtualMachine (reported, never destroyed).');
    this.orphanScans = new Counter({
      name: 'virtfleet_orphan_scans_total',
      help: 'Scans of hosts for orphan domains, by result (success, error).',
      labelNames: ['pool', 'result'],
      registers,
    });
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
    client.request = async function observed<T>(method: string, path: string, options?: Record<string, unknown>): Promise<T> {
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
    for (const gauge of [this.hostReady, this.hostVms, this.hostAllocatedCpus, this.hostAllocatedMemory, this.hostCapacityCpus, this.hostCapacityMemory, this.orphanDomains]) {
      gauge.remove({ pool, host });
    }
  }
}
