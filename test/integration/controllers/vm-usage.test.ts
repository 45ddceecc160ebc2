// Per-VM usage metrics (issue 19 point 5) through the controller's /metrics, served over HTTP
// as the Manager serves it, with the real API server and simulated hosts on libvirt's test
// driver. The test driver's bulk statistics carry the domain state only (no CPU, balloon, disk
// or network figures: `getAllDomainStats` with `enforce` refuses those groups), so here the
// series are virtfleet_vmi_running and nothing else; test/e2e/libvirt/rig.test.ts reads a
// real QEMU guest's CPU seconds.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { VmUsageCollector } from '../../../src/observability/vm-usage.js';
import { USAGE_METRICS } from '../../../src/observability/vm-usage-samples.js';
import { closeServer, startEndpoints } from '../../../src/runtime/http-endpoints.js';
import { TRACE_CHANNELS, type HypervisorCallTrace } from '../../../src/runtime/trace.js';
import { ControllerBench, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'usage-a', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const B: HostDecl = { name: 'usage-b', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };

const bench = new ControllerBench('vm-usage');
let pool = '';
let server: Server | undefined;
let metricsUrl = '';

interface Series {
  labels: Record<string, string>;
  value: number;
}

/** The series of `metric` in Prometheus' text format. */
function seriesOf(text: string, metric: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

async function scrape(): Promise<string> {
  const response = await fetch(metricsUrl);
  expect(response.status).toBe(200);
  return response.text();
}

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('usage', [A, B]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'both hosts ready');
  // The controller's registry on HTTP, as the Manager serves it with --metrics-address.
  const registry = bench.manager!.metrics.registry;
  server = await startEndpoints('127.0.0.1:0', {
    '/metrics': async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }),
  });
  metricsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
});

afterAll(async () => {
  await closeServer(server);
  await bench.close();
});

describe('virtfleet_vmi_* on the controller’s /metrics', () => {
  let host = '';

  it('has a running VM’s series, labelled namespace, name and host only, and none for a domain that is no VM', async () => {
    // A domain the controller did not make (no VM has its UUID), running on host A.
    const stranger = bench.hypervisor(A);
    const { uuid } = await stranger.ensureDefined(
      "<domain type='test'><name>not-a-vm</name><uuid>5a1e0000-0000-4000-8000-000000000001</uuid><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
    );
    await stranger.start(uuid);

    await bench.createVm('web', pool);
    const vm = await bench.untilVm('web', isRunning, 'Running');
    host = vm.status!.host!;

    const text = await scrape();
    expect(seriesOf(text, 'virtfleet_vmi_running')).toEqual([
      { labels: { namespace: bench.namespace, name: 'web', host }, value: 1 },
    ]);
    // The test driver reports the state only: no other figure, hence no other series.
    for (const metric of USAGE_METRICS.filter((m) => m.name !== 'virtfleet_vmi_running'))
      expect(seriesOf(text, metric.name)).toEqual([]);
    expect(text).toContain('# TYPE virtfleet_vmi_cpu_usage_seconds_total counter');
    expect(text).toContain('# TYPE virtfleet_vmi_memory_used_bytes gauge');
    expect(seriesOf(text, 'virtfleet_vmi_stats_failures_total')).toEqual([]);
  });

  it('drops the series of a VM that is deleted', async () => {
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'web');
    await bench.until(() => bench.vm('web') === undefined, 30_000, 'web deleted');
    let series: Series[];
    const deadline = Date.now() + 10_000;
    do {
      series = seriesOf(await scrape(), 'virtfleet_vmi_running');
      if (series.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    expect(series).toEqual([]);
  });
});

describe('VmUsageCollector', () => {
  it('makes one bulk call per host for scrapes within its cache time, and a new one after', async () => {
    await bench.createVm('db', pool);
    const vm = await bench.untilVm('db', isRunning, 'Running');
    const calls: string[] = [];
    const uris = new Set([bench.hostUri(A), bench.hostUri(B)]);
    const onCall = (message: unknown) => {
      const call = message as HypervisorCallTrace;
      if (call.operation === 'read domain statistics' && uris.has(call.uri)) calls.push(call.uri);
    };
    subscribe(TRACE_CHANNELS.hypervisorCall, onCall);
    try {
      let now = 1_000_000;
      const registry = new Registry();
      // Its own registry and clock; the hosts and VMs as the controller's wiring gives them.
      new VmUsageCollector(
        {
          hosts: () => [A, B].map((decl) => ({ pool, name: decl.name, hypervisor: bench.hypervisor(decl) })),
          vms: () =>
            bench.vms
              .list()
              .map((v) => ({ uid: v.metadata.uid!, namespace: v.metadata.namespace!, name: v.metadata.name! })),
        },
        registry,
        { cacheMs: 1000, now: () => now },
      );
      const first = await registry.metrics();
      now += 999;
      const second = await registry.metrics();
      expect(calls.sort()).toEqual([...uris].sort());
      expect(second).toBe(first);
      expect(seriesOf(first, 'virtfleet_vmi_running')).toEqual([
        { labels: { namespace: bench.namespace, name: 'db', host: vm.status!.host! }, value: 1 },
      ]);
      now += 1;
      await registry.metrics();
      expect(calls).toHaveLength(4);
    } finally {
      unsubscribe(TRACE_CHANNELS.hypervisorCall, onCall);
    }
  });
});
