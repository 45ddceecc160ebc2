// The HostPool controller's per-host gauges (docs/runtime.md), for every host the Fleet has in a
// pool (removed hosts that still have VMs included); a host's series go with the host.
import type { Fleet } from '../hosts/fleet.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import type { HostAllocation } from './allocations.js';
import type { PoolOrphans } from './hostpool-orphans.js';

export class PoolMetrics {
  /** Per pool, the hosts that have metric series. */
  private readonly hosts = new Map<string, Set<string>>();

  constructor(
    private readonly metrics: ControllerMetrics,
    private readonly fleet: Fleet,
    private readonly orphans: PoolOrphans,
  ) {}

  report(pool: string, allocations: Map<string, HostAllocation>): void {
    const { metrics } = this;
    const before = this.hosts.get(pool) ?? new Set<string>();
    const now = new Set<string>();
    for (const host of this.fleet.hosts(pool)) {
      now.add(host.name);
      const labels = { pool, host: host.name };
      const allocation = allocations.get(host.name);
      const facts = host.observed.facts;
      metrics.hostReady.set(labels, host.inSpec && host.verdict.readiness.ready ? 1 : 0);
      metrics.hostVms.set(labels, allocation?.vms.length ?? 0);
      metrics.hostAllocatedCpus.set(labels, allocation?.cpus ?? 0);
      metrics.hostAllocatedMemory.set(labels, allocation?.memoryBytes ?? 0);
      if (facts) {
        metrics.hostCapacityCpus.set(labels, facts.cpu.count);
        metrics.hostCapacityMemory.set(labels, facts.memoryBytes);
      } else {
        metrics.hostCapacityCpus.remove(labels);
        metrics.hostCapacityMemory.remove(labels);
      }
      const orphans = this.orphans.orphansOf(host);
      if (orphans) metrics.orphanDomains.set(labels, orphans.length);
      else metrics.orphanDomains.remove(labels);
    }
    for (const host of before) if (!now.has(host)) metrics.forgetHost(pool, host);
    if (now.size > 0) this.hosts.set(pool, now);
    else this.hosts.delete(pool);
  }
}
