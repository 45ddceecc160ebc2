// The per-VM usage metrics bench (issue 19 point 5): prints figures, passes or fails nothing.
//
//   npx tsx bench/metrics/metrics.ts [--vms 1000] [--hosts 50] [--scrapes 20] [--batch 32] [--keep]
//
// 1. Its own etcd + kube-apiserver and the CRDs; `--hosts` simulated hosts (libvirt test-driver
//    definition files, bench/fleet.ts as bench/scale uses them) in one HostPool.
// 2. The controller as a child process (`virtfleet controller`, through tsx) with /metrics on
//    loopback, and a preload that logs its bulk domain statistics calls (stats-calls-preload.mjs).
// 3. `--scrapes` scrapes of /metrics with the pool's hosts ready and no VM, then again with
//    `--vms` VMs Ready: each scrape 1.1 s after the last (past the collector's 1 s cache, so each
//    one reads the hosts), timed from request to last byte; the controller's CPU seconds over
//    them; the statistics calls each made. Then two scrapes at once (the shared reading).
// 4. The collector alone in this process, on fresh test:/// hosts with as many running domains:
//    what its part of a scrape costs without the controller's other metrics and work.
// 5. The series: all of /metrics, and the virtfleet_vmi_* ones by name. The test driver reports
//    the domain state only, so a simulated host gives virtfleet_vmi_running alone; a real QEMU
//    host gives up to 17 series per VM. The last figure is the exposition of that many: the
//    collector's own mapping (domainUsageOf, usageSamples) and prom-client's formatting, fed
//    QEMU-shaped records made here (no libvirt in that part: it times the formatting only).
// Everything it starts is stopped and removed on the way out, also on failure and on Ctrl-C.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, Registry } from 'prom-client';
import type { HostPool } from '../../src/api/hostpool.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { freePort } from '../../src/devstack/ports.js';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { domainUsageOf } from '../../src/hypervisors/libvirt/domain-stats.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import type { DomainStatsRecord } from '../../src/hypervisors/libvirt/native/index.js';
import { createLogger } from '../../src/observability/logging.js';
import { USAGE_METRICS, usageSamples, type VmRef } from '../../src/observability/vm-usage-samples.js';
import { VmUsageCollector } from '../../src/observability/vm-usage.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { testHosts, type TestHosts } from '../../test/integration/hypervisor/test-hosts.js';
import {
  arg,
  cleanupOnExit,
  controllerReady,
  percentile,
  pooled,
  startControlPlane,
  stopChild,
  Waiter,
  watchUntilCleanup,
} from '../common.js';
import { hostDecls, vmObject, writeHosts } from '../fleet.js';

const VMS = arg('vms', 1000);
const HOSTS = arg('hosts', 50);
const SCRAPES = arg('scrapes', 20);
const BATCH = arg('batch', 32);
const KEEP = process.argv.includes('--keep');
const NAMESPACE = 'default';
const POOL = 'metrics';
/** Past the collector's 1 s cache: every scrape reads the hosts. */
const SCRAPE_GAP_MS = 1100;

const root = repoRoot();
const dir = mkdtempSync(join(tmpdir(), 'virtfleet-metrics-'));
const callsFile = join(dir, 'stats-calls.jsonl');
const logger = createLogger('warn');
const { steps: cleanups, cleanup } = cleanupOnExit(dir, KEEP);
let startLoad = '';

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const sleep = (n: number) => new Promise((resolve) => setTimeout(resolve, n));

function ready(vm: VmObject | undefined): boolean {
  return ((vm?.status?.conditions as Condition[] | undefined) ?? []).some(
    (c) => c.type === 'Ready' && c.status === 'True',
  );
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The controller's bulk statistics calls logged so far. */
function statsCalls(): Array<{ uri: string; ms: number; error?: string }> {
  if (!existsSync(callsFile)) return [];
  return readFileSync(callsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { uri: string; ms: number; error?: string });
}

interface Scrape {
  ms: number;
  text: string;
}

async function scrape(url: string): Promise<Scrape> {
  const t0 = performance.now();
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return { ms: performance.now() - t0, text };
}

/** Series lines per metric name (histograms' _bucket/_sum/_count under their own names). */
function seriesCount(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][\w:]*/.exec(line)![0];
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

const total = (counts: Map<string, number>, filter: (name: string) => boolean = () => true) =>
  [...counts].filter(([name]) => filter(name)).reduce((sum, [, n]) => sum + n, 0);

interface Round {
  times: number[];
  cpu: number;
  callsPerScrape: number[];
  last: string;
}

/** `SCRAPES` scrapes, each past the cache; the controller's CPU over them and the calls each made. */
async function round(url: string, pid: number): Promise<Round> {
  const times: number[] = [];
  const callsPerScrape: number[] = [];
  let last = '';
  await sleep(SCRAPE_GAP_MS);
  const cpu0 = cpuSeconds(pid);
  for (let i = 0; i < SCRAPES; i++) {
    const before = statsCalls().length;
    const result = await scrape(url);
    times.push(result.ms);
    last = result.text;
    await sleep(SCRAPE_GAP_MS); // also lets the preload's lines land
    callsPerScrape.push(statsCalls().length - before);
  }
  // The gaps are idle time for the controller apart from its steady heartbeats: counted in.
  return { times, cpu: cpuSeconds(pid) - cpu0, callsPerScrape, last };
}

function describeRound(name: string, r: Round): string[] {
  const sorted = [...r.times].sort((a, b) => a - b);
  const counts = seriesCount(r.last);
  const calls = [...new Set(r.callsPerScrape)].sort((a, b) => a - b).join(', ');
  return [
    `${name}:`,
    `  scrape time p50 / p99 / max   ${ms(percentile(sorted, 50))} / ${ms(percentile(sorted, 99))} / ${ms(sorted.at(-1)!)} ms (${SCRAPES} scrapes, ${SCRAPE_GAP_MS} ms apart)`,
    `  bulk statistics calls per scrape: ${calls} (${HOSTS} hosts)`,
    `  controller CPU over the ${SCRAPES} scrapes and gaps: ${r.cpu.toFixed(2)} s (${((r.cpu / SCRAPES) * 1000).toFixed(0)} ms per scrape, heartbeats included)`,
    `  /metrics: ${(r.last.length / 1024).toFixed(0)} KiB, ${total(counts)} series, of which virtfleet_vmi_* ${total(counts, (n) => n.startsWith('virtfleet_vmi_'))}: ${
      [...counts]
        .filter(([n]) => n.startsWith('virtfleet_vmi_'))
        .map(([n, c]) => `${n} ${c}`)
        .join(', ') || 'none'
    }`,
  ];
}

/** A QEMU-shaped record: a running guest with one disk and one NIC, guest balloon stats on. */
function qemuRecord(i: number): DomainStatsRecord {
  const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  return {
    domain: { uuid, name: `vm-${i}`, id: i + 1 },
    stats: {
      'state.state': 1,
      'cpu.time': 1e9 * (i + 1),
      'balloon.current': 131072,
      'balloon.maximum': 131072,
      'balloon.available': 120000,
      'balloon.usable': 80000,
      'balloon.unused': 60000,
      'balloon.rss': 150000,
      'block.count': 1,
      'block.0.name': 'vda',
      'block.0.rd.reqs': i,
      'block.0.rd.bytes': 4096 * i,
      'block.0.wr.reqs': i,
      'block.0.wr.bytes': 4096 * i,
      'net.count': 1,
      'net.0.name': `vnet${i}`,
      'net.0.rx.bytes': 100 * i,
      'net.0.rx.pkts': i,
      'net.0.tx.bytes': 100 * i,
      'net.0.tx.pkts': i,
    },
  };
}

/** The mapping and exposition of `VMS` QEMU-shaped domains over `HOSTS` hosts, as one collection makes them. */
async function fullExposition(): Promise<string> {
  const records = Array.from({ length: VMS }, (_, i) => qemuRecord(i));
  const vms = new Map<string, VmRef>(records.map((r, i) => [r.domain.uuid, { namespace: NAMESPACE, name: `vm-${i}` }]));
  const registry = new Registry();
  const labelNames = ['namespace', 'name', 'host'] as const;
  const times: number[] = [];
  let series = 0;
  let bytes = 0;
  for (let run = 0; run < SCRAPES; run++) {
    registry.clear();
    const t0 = performance.now();
    const readings = Array.from({ length: HOSTS }, (_, h) => ({
      host: `host-${h}`,
      domains: records.filter((_, i) => i % HOSTS === h).map(domainUsageOf),
    }));
    const samples = usageSamples(readings, vms);
    for (const metric of USAGE_METRICS) {
      const made =
        metric.type === 'counter'
          ? new Counter({ name: metric.name, help: metric.help, labelNames, registers: [registry] })
          : new Gauge({ name: metric.name, help: metric.help, labelNames, registers: [registry] });
      for (const { labels, value } of samples.get(metric.name)!)
        if (made instanceof Counter) made.inc(labels, value);
        else made.set(labels, value);
    }
    const text = await registry.metrics();
    times.push(performance.now() - t0);
    series = total(seriesCount(text));
    bytes = text.length;
  }
  times.sort((a, b) => a - b);
  return `QEMU-shaped figures (made here, no libvirt): ${VMS} VMs give ${series} virtfleet_vmi_* series, ${(bytes / 1024).toFixed(0)} KiB; mapping + exposition p50 / max ${ms(percentile(times, 50))} / ${ms(times.at(-1)!)} ms (in this process, ${SCRAPES} runs)`;
}

/**
 * The collector alone, in this process: `HOSTS` fresh test:/// hosts (bench/fleet.ts) with
 * `VMS` running domains between them, read through the driver (LibvirtHypervisor) into a
 * registry of its own; scrapes past its cache, timed, with this process's CPU.
 */
async function collectorAlone(hosts: TestHosts): Promise<string> {
  const decls = hostDecls(HOSTS);
  const uris = writeHosts(hosts, decls, 'alone');
  const connections = new LibvirtConnectionPool();
  try {
    const hypervisors = decls.map((h) => ({
      pool: POOL,
      name: h.name,
      hypervisor: new LibvirtHypervisor(connections, uris.get(h.name)!),
    }));
    const refs: Array<VmRef & { uid: string }> = [];
    await pooled(
      Array.from({ length: VMS }, (_, i) => i),
      16,
      async (i) => {
        const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const { hypervisor } = hypervisors[i % HOSTS]!;
        await hypervisor.ensureDefined(
          `<domain type='test'><name>vm-${i}</name><uuid>${uid}</uuid><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>`,
        );
        await hypervisor.start(uid);
        refs.push({ uid, namespace: NAMESPACE, name: `vm-${i}` });
      },
    );
    let now = 0;
    const registry = new Registry();
    new VmUsageCollector({ hosts: () => hypervisors, vms: () => refs }, registry, { now: () => now });
    const times: number[] = [];
    let text = '';
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < SCRAPES; i++) {
      now += SCRAPE_GAP_MS; // past the cache, without waiting
      const t0 = performance.now();
      text = await registry.metrics();
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    times.sort((a, b) => a - b);
    return `the collector alone (this process, ${HOSTS} fresh test:/// hosts, ${VMS} running domains, ${total(seriesCount(text))} series): scrape p50 / max ${ms(percentile(times, 50))} / ${ms(times.at(-1)!)} ms, CPU ${((cpu.user + cpu.system) / 1000 / SCRAPES).toFixed(1)} ms per scrape (${SCRAPES} scrapes)`;
  } finally {
    await connections.closeAll();
  }
}

async function main(): Promise<void> {
  process.stdout.write(`virtfleet metrics bench: ${VMS} VMs over ${HOSTS} test-driver hosts, temp dir ${dir}\n`);
  startLoad = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
  const info = await startControlPlane(dir, root, cleanups);
  const hosts = testHosts();
  cleanups.push(() => hosts.cleanup());
  const decls = hostDecls(HOSTS);
  const uris = writeHosts(hosts, decls, 'metrics');

  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const kube = new KubeClient(kc, 'virtfleet-metrics-bench');
  const changed = new Waiter(1000);
  const cache = new Cache(kube, logger);
  const vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
  const pools = cache.informerFor<PoolObject>(HOST_POOL, {});
  vms.on(() => changed.poke());
  pools.on(() => changed.poke());
  await watchUntilCleanup(cache, cleanups);
  await kube.create(HOST_POOL, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name: POOL },
    spec: { hosts: decls.map((h) => ({ name: h.name, uri: uris.get(h.name)!, hypervisor: 'kvm' })) },
  });

  const health = await freePort();
  const metricsPort = await freePort();
  const log = openSync(join(dir, 'controller.log'), 'a');
  const child = spawn(
    process.execPath,
    // prettier-ignore
    ['--import', 'tsx', '--import', join(root, 'bench', 'metrics', 'stats-calls-preload.mjs'), 'src/cli/main.ts',
      'controller', '--kubeconfig', info.kubeconfig, '--health-address', `127.0.0.1:${health}`,
      '--metrics-address', `127.0.0.1:${metricsPort}`, '--log-level', 'warn'],
    { cwd: root, stdio: ['ignore', log, log], env: { ...process.env, VIRTFLEET_STATS_CALLS_FILE: callsFile } },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(() => stopChild(child, exited));
  await controllerReady(child, health, join(dir, 'controller.log'));
  await changed.until(
    () => (pools.get(POOL)?.status as HostPool['status'] | undefined)?.readyHosts === HOSTS,
    120_000,
    () => `all ${HOSTS} hosts ready`,
  );
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  const pid = child.pid!;

  const idle = await round(url, pid);

  const names = Array.from({ length: VMS }, (_, i) => `vm-${String(i).padStart(4, '0')}`);
  const t0 = performance.now();
  await pooled(names, BATCH, async (name) => {
    await kube.create(VIRTUAL_MACHINE, vmObject(name, NAMESPACE, POOL));
  });
  await changed.until(
    () => names.every((n) => ready(vms.get(`${NAMESPACE}/${n}`))),
    600_000,
    () => `all ${VMS} VMs Ready (${names.filter((n) => ready(vms.get(`${NAMESPACE}/${n}`))).length} are)`,
  );
  const readyMs = performance.now() - t0;
  await sleep(5000); // settled: the burst's Events and status writes are done

  const loaded = await round(url, pid);

  // Two scrapes at once (two Prometheus replicas): one reading between them.
  await sleep(SCRAPE_GAP_MS);
  const before = statsCalls().length;
  const [a, b] = await Promise.all([scrape(url), scrape(url)]);
  await sleep(500);
  const shared = statsCalls().length - before;
  const perHostMs = statsCalls()
    .slice(-HOSTS)
    .map((c) => c.ms)
    .sort((x, y) => x - y);

  const lines = [
    '',
    `${HOSTS} hosts ready; ${VMS} VMs created ${BATCH} at a time and all Ready in ${(readyMs / 1000).toFixed(1)} s`,
    '',
    ...describeRound(`no VMs (${HOSTS} hosts)`, idle),
    '',
    ...describeRound(`${VMS} VMs running (${HOSTS} hosts, ${VMS / HOSTS} each)`, loaded),
    `  one host's bulk call (controller's probe), p50 / max of the last ${HOSTS}: ${ms(percentile(perHostMs, 50))} / ${ms(perHostMs.at(-1)!)} ms`,
    '',
    `two scrapes at once: ${ms(a.ms)} and ${ms(b.ms)} ms, ${shared} bulk calls between them (${HOSTS} hosts)`,
    '',
    await collectorAlone(hosts),
    await fullExposition(),
    '',
    `machine: load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} (1 / 5 / 15 min) at the end; ${startLoad} at the start`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`metrics bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
