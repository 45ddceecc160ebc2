// The per-VM usage collector: at each scrape, one bulk statistics call per host of the fleet
// (Hypervisor.domainStats), mapped to the virtfleet_vmi_* metrics (vm-usage-samples.ts).
//
// Read on scrape rather than on an interval of our own: the figures are as fresh as the scrape,
// Prometheus alone sets the period, and nothing is read while nobody scrapes. A reading started
// less than `cacheMs` ago (or still under way) is shared, so two scrapes within a second (two
// Prometheus replicas) make one call per host. The series are built afresh from each reading:
// a VM that is gone, or a domain that is no VM's, has none.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DomainUsage, Hypervisor } from '../hypervisors/hypervisor.js';
import type { Logger } from './logging.js';
import { USAGE_METRICS, usageSamples, type HostReading, type UsageSample, type VmRef } from './vm-usage-samples.js';

/** A host to read: its pool and name (the `host` label) and its Hypervisor. */
export interface UsageHost {
  pool: string;
  name: string;
  hypervisor: Pick<Hypervisor, 'uri' | 'domainStats'>;
}

/** What the collector needs of the controller: the hosts to read and the VMs by UID. */
export interface UsageSources {
  /** The hosts to read now (hosts that cannot be reached now are best left out). */
  hosts(): UsageHost[];
  /** The VMs the controller knows, by UID (= their domains' UUID). */
  vms(): Iterable<VmRef & { uid: string }>;
}

export interface VmUsageOptions {
  /** A reading younger than this is shared between scrapes. Default 1000 ms. */
  cacheMs?: number;
  /** A host that has not answered within this time is left out of the scrape. Default 5000 ms. */
  hostTimeoutMs?: number;
  logger?: Logger;
  /** The clock (tests). */
  now?: () => number;
}

interface Reading {
  startedAt: number;
  samples: Promise<Map<string, UsageSample[]>>;
}

export class VmUsageCollector {
  private reading: Reading | undefined;
  private readonly inFlight = new Map<string, Promise<DomainUsage[]>>();
  private readonly failures: Counter<'pool' | 'host'>;
  private readonly cacheMs: number;
  private readonly hostTimeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly sources: UsageSources,
    registry: Registry,
    private readonly options: VmUsageOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 1000;
    this.hostTimeoutMs = options.hostTimeoutMs ?? 5000;
    this.now = options.now ?? Date.now;
    const registers = [registry];
    const labelNames = ['namespace', 'name', 'host'] as const;
    for (const metric of USAGE_METRICS) {
      const samplesOf = async () => (await this.samples()).get(metric.name) ?? [];
      if (metric.type === 'counter') {
        new Counter({
          name: metric.name,
          help: metric.help,
          labelNames,
          registers,
          async collect() {
            const samples = await samplesOf();
            this.reset();
            for (const { labels, value } of samples) this.inc(labels, value);
          },
        });
      } else {
        new Gauge({
          name: metric.name,
          help: metric.help,
          labelNames,
          registers,
          async collect() {
            const samples = await samplesOf();
            this.reset();
            for (const { labels, value } of samples) this.set(labels, value);
          },
        });
      }
    }
    this.failures = new Counter({
      name: 'virtfleet_vmi_stats_failures_total',
      help: "Readings of a host's domain statistics that failed or got no answer in time: that host's VMs had no virtfleet_vmi_* series in those scrapes.",
      labelNames: ['pool', 'host'],
      registers,
    });
  }

  /** The samples of the current reading, or of a new one when it is older than cacheMs. */
  samples(): Promise<Map<string, UsageSample[]>> {
    const now = this.now();
    if (this.reading && now - this.reading.startedAt < this.cacheMs) return this.reading.samples;
    // A failure outside the hosts' calls (each host's is caught in readHost) leaves the usage
    // series out of this scrape, never the controller's other metrics.
    const samples = this.read().catch((error: unknown) => {
      this.options.logger?.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'reading VM usage failed',
      );
      return new Map<string, UsageSample[]>();
    });
    this.reading = { startedAt: now, samples };
    return samples;
  }

  private async read(): Promise<Map<string, UsageSample[]>> {
    // One call per URI, whichever pools name the host.
    const byUri = new Map<string, UsageHost>();
    for (const host of this.sources.hosts()) if (!byUri.has(host.hypervisor.uri)) byUri.set(host.hypervisor.uri, host);
    const readings = await Promise.all([...byUri.values()].map((host) => this.readHost(host)));
    const vms = new Map<string, VmRef>();
    for (const vm of this.sources.vms()) vms.set(vm.uid, { namespace: vm.namespace, name: vm.name });
    return usageSamples(
      readings.filter((r): r is HostReading => r !== undefined),
      vms,
    );
  }

  private async readHost(host: UsageHost): Promise<HostReading | undefined> {
    const { uri } = host.hypervisor;
    // A host still answering an earlier scrape's call is not asked again: its answer is awaited.
    let call = this.inFlight.get(uri);
    if (!call) {
      call = host.hypervisor.domainStats();
      this.inFlight.set(uri, call);
      const done = () => this.inFlight.delete(uri);
      void call.then(done, done);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.hostTimeoutMs);
    });
    try {
      const result = await Promise.race([call, timeout]);
      if (result === 'timeout') throw new Error(`no answer within ${this.hostTimeoutMs} ms`);
      return { host: host.name, domains: result };
    } catch (error) {
      this.failures.inc({ pool: host.pool, host: host.name });
      this.options.logger?.debug(
        { pool: host.pool, host: host.name, err: error instanceof Error ? error.message : String(error) },
        'no domain statistics from host',
      );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
