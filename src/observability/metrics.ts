// The controller's Prometheus metrics (prom-client), in one registry that
// /metrics serves. Names follow controller-runtime's, under a virtfleet_ prefix.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  }
}
