// The scale bench: prints figures, passes or fails nothing (issue 5, "Done means" 4).
//
//   npx tsx bench/scale/scale.ts [--vms 1000] [--hosts 50] [--single 50] [--batch 32] [--quiet-seconds 10]
//     [--converge-seconds N] [--keep]
//     [--tsx] [--profile] [--heap-snapshot] [--trace] [--patch FILE] [--node-options "…"] [--no-deploy-env]
//
// 1. Its own etcd + kube-apiserver (ControlPlane in a temp dir) and the CRDs.
// 2. `--hosts` simulated hosts: libvirt test-driver definition files of varied capacities, in
//    one HostPool. A test:/// host lives in the process that opened it, so only the controller
//    sees their domains; the bench reads what the controller reports (status.host,
//    status.domainUUID) and never opens those hosts itself during the run.
// 3. The controller as a child process (`virtfleet controller`), its RSS read from
//    /proc/PID/status (VmRSS) every 100 ms.
// 4. Burst: `--vms` kernel-boot VMs (no disks), created `--batch` requests at a time; a watch
//    records when each becomes Ready=True. Then, once the controller has written the burst's
//    Events (its virtfleet_events_unsent is 0), a quiet window: what a settled fleet costs (API
//    requests, CPU and reconciles per host; settled.ts).
// 5. Unloaded: `--single` more VMs, one at a time (each waits for Ready before the next).
// 6. API requests: the kube-apiserver's own apiserver_request_total, before and after, minus the
//    bench's own requests (its creates; its watch), per verb and resource.
// 7. Raw libvirt: the same XML (built with the controller's own domainXmlFor for each VM) defined
//    and started through the binding in this process on fresh hosts of the same kind: one at a
//    time (per-VM latency), then all at once over the hosts (wall time).
// 8. The simulated hosts' share of the controller's RSS: hosts-memory.ts in a plain process
//    makes the same hosts and domains with the same calls; its RSS growth is printed, and
//    subtracted from the controller's (on real hosts that part is not in the controller).
// The controller runs with the environment deploy/base/deployment.yaml gives it (NODE_OPTIONS,
// MALLOC_ARENA_MAX): as deployed, not sized for this machine's memory. CPU seconds of each
// process per phase are printed: on a shared machine they say more than wall times.
// --trace: the controller's timing probes (src/runtime/trace.ts) for the one-at-a-time VMs.
// --patch FILE: the controller built from a copy of src (and deploy/) with FILE applied.
// Everything it starts (control plane, controller, temp dirs) is stopped and removed on the way
// out, also on failure and on Ctrl-C; `--keep` keeps the temp dir (logs) for a look.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  statSync,
  mkdtempSync,
  symlinkSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  closeSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve as resolve_ } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { HostPool } from '../../src/api/hostpool.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { domainXmlFor } from '../../src/controllers/vm-domain.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { kubectlOrThrow } from '../../src/devstack/crds.js';
import { freePort } from '../../src/devstack/ports.js';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { createLogger } from '../../src/observability/logging.js';
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
import { hostDecls, writeHosts, vmObject, type HostDecl } from '../fleet.js';
import type { HostsMemory, HostsMemoryInput } from './hosts-memory.js';
import { eventsWritten, reconcileWork, settledCost } from './settled.js';

const VMS = arg('vms', 1000);
const HOSTS = arg('hosts', 50);
const SINGLE = arg('single', 50);
const BATCH = arg('batch', 32);
const KEEP = process.argv.includes('--keep');
/** Run the controller from TypeScript through tsx instead of compiled JavaScript (as shipped). */
const TSX = process.argv.includes('--tsx');
/** Run the controller under --cpu-prof; the profile is written to a directory that is kept. */
const PROFILE = process.argv.includes('--profile');
/** Write heap snapshots of the controller when idle and after the burst (kept with the profile). */
const HEAP_SNAPSHOT = process.argv.includes('--heap-snapshot');
/** Record the controller's timing probes (src/runtime/trace.ts) and show where one VM's time goes. */
const TRACE = process.argv.includes('--trace');
/**
 * `--patch FILE`: a unified diff (paths a/src/…) applied to a copy of src before it is compiled:
 * the controller measured with changes that are not in the tree yet. The tree is not touched.
 */
/** `--node-options "…"`: extra node/V8 options for the controller process (to compare heap settings). */
const NODE_OPTIONS = process.argv.includes('--node-options')
  ? process.argv[process.argv.indexOf('--node-options') + 1]!.split(/\s+/).filter(Boolean)
  : [];
/** `--no-deploy-env`: do not give the controller the node options and environment deploy/ gives it. */
const DEPLOY_ENV = !process.argv.includes('--no-deploy-env');
const PATCH = process.argv.includes('--patch') ? process.argv[process.argv.indexOf('--patch') + 1] : undefined;
const NAMESPACE = 'default';
const POOL = 'scale';
/** A HostPool holds at most 100 hosts (its schema): more hosts make more pools, scale-1, scale-2… */
const HOSTS_PER_POOL = 100;
const POOL_COUNT = Math.ceil(HOSTS / HOSTS_PER_POOL);
const poolName = (i: number) => (i === 0 ? POOL : `${POOL}-${i}`);
/** How long the burst may take to converge (`--converge-seconds`); default 600 s, 0.1 s per VM beyond that. */
const CONVERGE_DEADLINE_MS = arg('converge-seconds', Math.max(600, VMS / 10)) * 1000;
const QUIET_WINDOW_MS = arg('quiet-seconds', 10) * 1000;
/** The longest the bench waits, once all are Ready, for the controller to have written the burst's Events. */
const EVENTS_DEADLINE_MS = 300_000;
/** Raw defines with schema validation: a sample (each costs 11-17 ms whatever the XML). */
const VALIDATED_SAMPLE = 500;

const root = repoRoot();
const dir = mkdtempSync(join(tmpdir(), 'virtfleet-scale-'));
const logger = createLogger('warn');
const traceFile = join(dir, 'trace.jsonl');
const profileDir = mkdtempSync(join(tmpdir(), 'virtfleet-scale-profile-'));
if (!PROFILE && !HEAP_SNAPSHOT) rmSync(profileDir, { recursive: true });

// Everything started is stopped and removed on the way out, whatever happens.
const { steps: cleanups, cleanup } = cleanupOnExit(dir, KEEP, () => {
  if (PROFILE || HEAP_SNAPSHOT) process.stderr.write(`controller CPU profile / heap snapshots in ${profileDir}\n`);
});

// ---- small helpers ---------------------------------------------------------------------------

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

function ready(vm: VmObject | undefined): boolean {
  const c = (vm?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Ready');
  return c?.status === 'True';
}

/** The furthest step of a VM as its object shows it. */
function stageOf(vm: VmObject): string {
  const conditions = (vm.status?.conditions as Condition[] | undefined) ?? [];
  const is = (type: string) => conditions.some((c) => c.type === type && c.status === 'True');
  if (is('Ready')) return '4 Ready=True';
  if (is('Provisioned')) return '3 Provisioned=True';
  if (is('Scheduled')) return '2 Scheduled=True (placement written)';
  if (vm.metadata.finalizers?.length) return '1 finalizer added';
  return '0 created (seen by the watch)';
}

// ---- CPU time per process -------------------------------------------------------------------

/** CPU seconds (user + system) a process has used so far; the bench's own from process.cpuUsage. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined || pid === process.pid) {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

type CpuSample = Record<string, number>;

/** CPU seconds of a process's main thread (for node: JavaScript, and the GC work done there). */
function mainThreadCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function cpuSample(pids: Record<string, number | undefined>): CpuSample {
  const sample: CpuSample = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  // The controller's other threads: libvirt's (one per host, where the test driver does the
  // simulated hosts' work), V8's GC and compiler helpers, libuv's pool.
  if (pids.controller !== undefined) {
    const main = mainThreadCpuSeconds(pids.controller);
    return { ...sample, 'controller (JS thread)': main, 'controller (other threads)': sample.controller! - main };
  }
  return sample;
}

function cpuDiff(after: CpuSample, before: CpuSample): string {
  return Object.keys(after)
    .map((name) => `${name} ${(after[name]! - before[name]!).toFixed(1)} s`)
    .join(', ');
}

// ---- the API server's request counter --------------------------------------------------------

type Counts = Map<string, number>; // "VERB resource[/subresource]" → count

async function apiserverRequests(kubectl: string, kubeconfig: string): Promise<Counts> {
  const text = await kubectlOrThrow(kubectl, kubeconfig, ['get', '--raw', '/metrics']);
  const counts: Counts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!labels.resource) continue; // non-resource requests (/metrics, /readyz, discovery)
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

function diff(after: Counts, before: Counts): Counts {
  const out: Counts = new Map();
  for (const [key, value] of after) {
    const d = value - (before.get(key) ?? 0);
    if (d > 0) out.set(key, d);
  }
  return out;
}

function subtract(counts: Counts, own: Counts): Counts {
  const out = new Map(counts);
  for (const [key, value] of own) {
    const left = (out.get(key) ?? 0) - value;
    if (left > 0) out.set(key, left);
    else out.delete(key);
  }
  return out;
}

function total(counts: Counts, filter: (key: string) => boolean = () => true): number {
  let sum = 0;
  for (const [key, value] of counts) if (filter(key)) sum += value;
  return sum;
}

const isWrite = (key: string) => /^(POST|PUT|PATCH|DELETE|APPLY|CREATE|UPDATE) /.test(key);

function breakdown(counts: Counts): string {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([key, value]) => `      ${String(value).padStart(6)}  ${key}`)
    .join('\n');
}

// ---- the controller as deployed ------------------------------------------------------------------

/**
 * The environment deploy/base/deployment.yaml gives the controller container that changes how
 * the process uses memory: NODE_OPTIONS (V8 heap sizing) and MALLOC_ARENA_MAX. Without them, a
 * controller on this machine would size its heap for all of its memory (node: a quarter of it,
 * and an old space allowed to grow up to 4× its live size between collections), while in its
 * container (256Mi) it would not: the bench measures the controller as it runs when deployed.
 */
function deployedEnv(tree: string): Record<string, string> {
  const file = join(tree, 'deploy', 'base', 'deployment.yaml');
  if (!existsSync(file)) return {};
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => doc.toJS() as Record<string, unknown>);
  const out: Record<string, string> = {};
  for (const doc of docs) {
    const containers =
      (
        doc?.spec as {
          template?: {
            spec?: { containers?: Array<{ name?: string; env?: Array<{ name: string; value?: string }> }> };
          };
        }
      )?.template?.spec?.containers ?? [];
    for (const container of containers) {
      if (container.name !== 'controller') continue;
      for (const variable of container.env ?? []) {
        if ((variable.name === 'NODE_OPTIONS' || variable.name === 'MALLOC_ARENA_MAX') && variable.value !== undefined)
          out[variable.name] = variable.value;
      }
    }
  }
  return out;
}

/** Set once the controller is built: from the tree, or from the patched copy with --patch. */
let controllerEnv: Record<string, string> = {};

// ---- the controller process ------------------------------------------------------------------

interface ControllerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  metricsUrl: string;
  rss: { samples: number[]; peakKiB: number; lastKiB: number };
  stopSampling: () => void;
}

function readRssKiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The controller's entry point. As shipped (Dockerfile: node dist/cli/main.js) it is compiled
 * JavaScript: src is compiled into a directory of the bench's own (under bench/scale, so that
 * node_modules and the native addon resolve), removed on the way out. tsc's type errors do not
 * stop the emit: other work in the tree must not stop the bench.
 */
async function controllerEntry(): Promise<string[]> {
  if (TSX && PATCH) throw new Error('--patch works on the compiled controller only');
  if (DEPLOY_ENV) controllerEnv = deployedEnv(root);
  if (TSX) return ['--import', 'tsx', 'src/cli/main.ts'];
  // Laid out as the repository is: package.json (its version, "type": "module") two levels
  // above cli/main.js, and build/Release (the addon) next to the package.json.
  const base = join(root, 'bench', 'scale', `.build-${process.pid}`);
  const out = join(base, 'dist');
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  mkdirSync(base, { recursive: true });
  symlinkSync(join(root, 'package.json'), join(base, 'package.json'));
  symlinkSync(join(root, 'build'), join(base, 'build'));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (PATCH) {
    // A copy of src (and deploy/, for the controller's environment) with the patch applied,
    // compiled with the shipped settings.
    cpSync(join(root, 'src'), join(base, 'src'), { recursive: true });
    cpSync(join(root, 'deploy'), join(base, 'deploy'), { recursive: true });
    await new Promise<void>((resolve, reject) =>
      execFile('patch', ['-p1', '--forward', '--batch', '-d', base, '-i', resolve_(PATCH)], (error, stdout, stderr) =>
        error ? reject(new Error(`--patch ${PATCH} does not apply to src:\n${stdout}${stderr}`)) : resolve(),
      ),
    );
    const tsconfig = {
      extends: join(root, 'tsconfig.json'),
      compilerOptions: { rootDir: 'src', outDir: 'dist' },
      include: ['src'],
    };
    writeFileSync(join(base, 'tsconfig.json'), JSON.stringify(tsconfig));
    await new Promise<void>((resolve) =>
      execFile(process.execPath, [tsc, '-p', join(base, 'tsconfig.json')], { cwd: base }, () => resolve()),
    );
    if (DEPLOY_ENV) controllerEnv = deployedEnv(base);
  } else {
    if (DEPLOY_ENV) controllerEnv = deployedEnv(root);
    await new Promise<void>((resolve) =>
      execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out], { cwd: root }, () => resolve()),
    );
  }
  const main = join(out, 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`compiling src to ${out} made no cli/main.js; try --tsx`);
  return [main];
}

async function startController(entry: string[], kubeconfig: string): Promise<ControllerProcess> {
  const health = await freePort();
  const metrics = await freePort();
  const log = openSync(join(dir, 'controller.log'), 'a');
  // node directly (not npx), so that the pid is the controller's own process.
  const child = spawn(
    process.execPath,
    [
      ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      ...(HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profileDir}`] : []),
      ...NODE_OPTIONS,
      ...(TRACE ? ['--import', join(root, 'bench', 'scale', 'trace-preload.mjs')] : []),
      ...entry,
      'controller',
      '--kubeconfig',
      kubeconfig,
      '--health-address',
      `127.0.0.1:${health}`,
      '--metrics-address',
      `127.0.0.1:${metrics}`,
      '--log-level',
      'warn',
    ],
    {
      cwd: root,
      stdio: ['ignore', log, log],
      env: { ...process.env, ...controllerEnv, ...(TRACE ? { VIRTFLEET_TRACE_FILE: traceFile } : {}) },
    },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const rss = { samples: [] as number[], peakKiB: 0, lastKiB: 0 };
  const timer = setInterval(() => {
    const kib = readRssKiB(child.pid!);
    if (kib === undefined) return;
    rss.samples.push(kib);
    rss.lastKiB = kib;
    rss.peakKiB = Math.max(rss.peakKiB, kib);
  }, 100);
  const controller: ControllerProcess = {
    child,
    exited,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    rss,
    stopSampling: () => clearInterval(timer),
  };
  cleanups.push(async () => {
    controller.stopSampling();
    await stopChild(child, exited);
  });
  // Ready when its health endpoint answers.
  await controllerReady(child, health, join(dir, 'controller.log'));
  return controller;
}

/**
 * Where the controller's RSS is, from /proc (file-backed vs anonymous) and its /metrics (V8's
 * heap spaces): file-backed is node's and the libraries' code; anonymous is the V8 heap plus
 * everything malloc'd (libvirt and its simulated hosts, OpenSSL, buffers, thread stacks).
 */
async function memoryBreakdown(controller: ControllerProcess): Promise<string> {
  const status = readFileSync(`/proc/${controller.child.pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const spaces = await controllerMetric(controller.metricsUrl, 'virtfleet_nodejs_heap_space_size_total_bytes');
  const used = await controllerMetric(controller.metricsUrl, 'virtfleet_nodejs_heap_space_size_used_bytes');
  const space = (m: Map<string, number>, name: string) => [...m].find(([k]) => k.includes(`space="${name}"`))?.[1] ?? 0;
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const M = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  const heap = sum(spaces);
  return (
    `RSS ${M(kib('VmRSS') * 1024)} MiB = file-backed ${M(kib('RssFile') * 1024)} + anonymous ${M(kib('RssAnon') * 1024)}; ` +
    `V8 heap ${M(heap)} committed, ${M(sum(used))} used (new ${M(space(spaces, 'new'))}, old ${M(space(spaces, 'old'))}, ` +
    `large objects ${M(space(spaces, 'large_object'))}, code ${M(space(spaces, 'code'))}); ` +
    `anonymous beyond the V8 heap ${M(kib('RssAnon') * 1024 - heap)} (malloc: libvirt and the simulated hosts, TLS, buffers, thread stacks)`
  );
}

/** Has the controller write a heap snapshot (SIGUSR2) and waits until the file stops growing. */
async function heapSnapshot(controller: ControllerProcess): Promise<void> {
  const before = new Set(readdirSync(profileDir));
  controller.child.kill('SIGUSR2');
  let last = -1;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const file = readdirSync(profileDir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    const size = file ? statSync(join(profileDir, file)).size : -1;
    if (size > 0 && size === last) return;
    last = size;
  }
}

async function controllerMetric(url: string, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

// ---- --trace: one VM's way through the controller ------------------------------------------------

interface TraceRecord {
  ch: string;
  /** Start (or moment) and duration, epoch ms. */
  start?: number;
  at?: number;
  ms?: number;
  [key: string]: unknown;
}

/**
 * The controller's trace records of one-at-a-time VMs, each within its own window (create
 * request → Ready seen by the bench): the median VM's timeline, and per step the p50 offset.
 */
function traceReport(
  singles: string[],
  uids: Map<string, string>,
  createdAt: Map<string, number>,
  readyAt: Map<string, number>,
  latencies: Map<string, number>,
): string[] {
  if (!existsSync(traceFile)) return ['  (no trace records)'];
  const records = readFileSync(traceFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TraceRecord);
  const epoch = (t: number) => performance.timeOrigin + t;
  const label = (r: TraceRecord): string => {
    switch (r.ch) {
      case 'kube:request':
        return `API ${r.method} ${String(r.path)
          .replace(/^\/apis?\/[^/]+(\/v[^/]+)?/, '')
          .replace(/single-\d+/, 'VM')} → ${r.status}`;
      case 'informer:event':
        return `watch ${r.resource} ${r.type}`;
      case 'workqueue:add':
        return `enqueue (${r.controller})`;
      case 'reconcile':
        return `reconcile ${r.controller} → ${r.result}`;
      case 'hypervisor:call':
        return `libvirt ${String(r.operation).replace(/[0-9a-f-]{36}/, 'UID')}${r.error ? ` (${r.error})` : ''}`;
      default:
        return r.ch;
    }
  };
  const perVm = new Map<string, Array<{ offset: number; ms: number; what: string }>>();
  for (const name of singles) {
    const from = epoch(createdAt.get(name)!);
    const to = epoch(readyAt.get(name)!);
    const uid = uids.get(name) ?? '';
    const mine = records
      .filter((r) => {
        const t = r.start ?? r.at ?? 0;
        if (t < from - 1 || t > to + 1) return false;
        // Only this VM's where the record names it; the rest (events, a define, the pool's) by time.
        if (r.ch === 'reconcile' || r.ch === 'workqueue:add') return r.key === `${NAMESPACE}/${name}`;
        if (r.ch === 'informer:event') return r.resource !== 'virtualmachines' || r.key === `${NAMESPACE}/${name}`;
        if (r.ch === 'kube:request' && String(r.path).includes('/virtualmachines/'))
          return String(r.path).includes(`/virtualmachines/${name}`);
        if (r.ch === 'hypervisor:call' && /[0-9a-f]{8}-[0-9a-f]{4}-/.test(String(r.operation)))
          return String(r.operation).includes(uid);
        return true;
      })
      .map((r) => ({ offset: (r.start ?? r.at ?? 0) - from, ms: r.ms ?? 0, what: label(r) }))
      .sort((a, b) => a.offset - b.offset);
    perVm.set(name, mine);
  }
  const byLatency = [...singles].sort((a, b) => latencies.get(a)! - latencies.get(b)!);
  const median = byLatency[Math.floor(byLatency.length / 2)]!;
  const lines = [
    `  the median VM (${median}, ${ms(latencies.get(median)!)} ms), as the controller's probes saw it (ms from the create request; duration):`,
  ];
  for (const step of perVm.get(median)!)
    lines.push(
      `    ${ms(step.offset).padStart(6)}  ${step.ms ? `${ms(step.ms)}`.padStart(6) : '      '}  ${step.what}`,
    );
  // Per kind of step over all VMs: how many per VM and their total duration (p50).
  const kinds = new Set([...perVm.values()].flatMap((steps) => steps.map((s) => s.what)));
  lines.push(`  per kind of step over the ${singles.length} VMs: count per VM (p50), total ms per VM (p50)`);
  for (const kind of [...kinds].sort()) {
    const counts = singles.map((n) => perVm.get(n)!.filter((s) => s.what === kind).length).sort((a, b) => a - b);
    const totals = singles
      .map((n) =>
        perVm
          .get(n)!
          .filter((s) => s.what === kind)
          .reduce((sum, s) => sum + s.ms, 0),
      )
      .sort((a, b) => a - b);
    lines.push(
      `    ${kind.padEnd(60)} ${String(percentile(counts, 50)).padStart(3)}  ${ms(percentile(totals, 50)).padStart(6)}`,
    );
  }
  return lines;
}

// ---- the raw baseline ----------------------------------------------------------------------------

interface RawResult {
  sequential: number[];
  /** One at a time, defined with schema validation as the controller defines (ensureDefined). */
  validated: number[];
  parallelWallMs: number;
}

/**
 * The same XML the controller defined (domainXmlFor on each VM as it stands, on the host it
 * was placed on), defined and started through the binding, in this process, on fresh hosts
 * written from the same declarations.
 */
async function rawLibvirt(hosts: TestHosts, decls: HostDecl[], pool: PoolObject, vms: VmObject[]): Promise<RawResult> {
  const seqUris = writeHosts(hosts, decls, 'raw-seq');
  const parUris = writeHosts(hosts, decls, 'raw-par');
  const valUris = writeHosts(hosts, decls, 'raw-val');
  const facts = await new LibvirtHypervisor(new LibvirtConnectionPool(), seqUris.values().next().value!).facts();
  const xmlOf = (vm: VmObject) => domainXmlFor(vm, pool.spec, vm.status?.hypervisor ?? 'kvm', facts).xml;

  const open = async (uris: Map<string, string>) =>
    new Map(
      await Promise.all([...uris].map(async ([name, uri]) => [name, await LibvirtConnection.open(uri)] as const)),
    );
  const seq = await open(seqUris);
  const par = await open(parUris);
  const val = await open(valUris);
  try {
    const sequential: number[] = [];
    for (const vm of vms) {
      const conn = seq.get(vm.status?.host ?? '')!;
      const xml = xmlOf(vm);
      const t0 = performance.now();
      await conn.defineXML(xml);
      await conn.domainCreate(vm.metadata.uid!);
      sequential.push(performance.now() - t0);
    }
    const validated: number[] = [];
    for (const vm of vms.slice(0, VALIDATED_SAMPLE)) {
      const conn = val.get(vm.status?.host ?? '')!;
      const xml = xmlOf(vm);
      const t0 = performance.now();
      await conn.defineXML(xml, { validate: true });
      await conn.domainCreate(vm.metadata.uid!);
      validated.push(performance.now() - t0);
    }
    // All at once, as the controller's 16 workers would: 16 in flight over the hosts.
    const t0 = performance.now();
    await pooled(vms, 16, async (vm) => {
      const conn = par.get(vm.status?.host ?? '')!;
      await conn.defineXML(xmlOf(vm));
      await conn.domainCreate(vm.metadata.uid!);
    });
    return { sequential, validated, parallelWallMs: performance.now() - t0 };
  } finally {
    await Promise.all([...seq.values(), ...par.values(), ...val.values()].map((c) => c.close()));
  }
}

// ---- the simulated hosts' share of the controller's RSS --------------------------------------

/**
 * bench/scale/hosts-memory.ts in a process of its own (plain Node, nothing else loaded that the
 * difference would count): the same host declarations, the same domains (XML, host) as the
 * controller made, through the same binding; its RSS before and after.
 */
async function hostsMemory(
  hosts: TestHosts,
  decls: HostDecl[],
  pool: PoolObject,
  vms: VmObject[],
): Promise<HostsMemory> {
  const connections = new LibvirtConnectionPool();
  const facts = await new LibvirtHypervisor(connections, hosts.host('facts', {})).facts();
  await connections.closeAll();
  const input: HostsMemoryInput = {
    hosts: decls,
    domains: vms.map((vm) => ({
      host: vm.status?.host ?? '',
      uuid: vm.metadata.uid!,
      xml: domainXmlFor(vm, pool.spec, vm.status?.hypervisor ?? 'kvm', facts).xml,
    })),
  };
  const file = join(dir, 'domains.json');
  writeFileSync(file, JSON.stringify(input));
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [
        '--expose-gc',
        '--max-semi-space-size=1',
        '--import',
        'tsx',
        join(root, 'bench', 'scale', 'hosts-memory.ts'),
        file,
        '--json',
      ],
      {
        cwd: root,
        maxBuffer: 1 << 20,
        env: {
          ...process.env,
          ...(controllerEnv.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: controllerEnv.MALLOC_ARENA_MAX } : {}),
        },
      },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
  return JSON.parse(out) as HostsMemory;
}

// ---- the run -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  process.stdout.write(
    `virtfleet scale bench: ${VMS} VMs over ${HOSTS} test-driver hosts in ${POOL_COUNT} HostPool${POOL_COUNT > 1 ? 's' : ''} (+${SINGLE} one at a time), controller ${TSX ? 'through tsx' : 'compiled'}${PATCH ? ` with ${PATCH} applied` : ''}${NODE_OPTIONS.length ? ` (node ${NODE_OPTIONS.join(' ')})` : ''}, temp dir ${dir}\n`,
  );
  const info = await startControlPlane(dir, root, cleanups);
  const kubectl = info.binaries.kubectl;

  const hosts = testHosts();
  cleanups.push(() => hosts.cleanup());
  const decls = hostDecls(HOSTS);
  const uris = writeHosts(hosts, decls, 'ctl');

  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const kube = new KubeClient(kc, 'virtfleet-scale-bench');

  // The bench's own view: a watch of the VMs and the pool.
  const changed = new Waiter(1000);
  const createdAt = new Map<string, number>();
  const readyAt = new Map<string, number>();
  const cache = new Cache(kube, logger);
  const vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
  const pools = cache.informerFor<PoolObject>(HOST_POOL, {});
  // For the one-at-a-time VMs: when the bench's watch saw each step, to tell where the time goes.
  const steps = new Map<string, Map<string, number>>();
  vms.on((event) => {
    const name = event.object.metadata.name ?? '';
    if (name.startsWith('single-') && event.type !== 'delete') {
      const seen = steps.get(name) ?? new Map<string, number>();
      steps.set(name, seen);
      const stage = stageOf(event.object);
      if (!seen.has(stage)) seen.set(stage, performance.now());
    }
    if (event.type !== 'delete' && !readyAt.has(name) && ready(event.object)) readyAt.set(name, performance.now());
    changed.poke();
  });
  pools.on(() => changed.poke());
  await watchUntilCleanup(cache, cleanups);

  // Hosts in pools of HOSTS_PER_POOL in order; the VMs spread over the pools in turn.
  const poolHosts = (i: number) => decls.slice(i * HOSTS_PER_POOL, (i + 1) * HOSTS_PER_POOL);
  for (let i = 0; i < POOL_COUNT; i++) {
    await kube.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: poolName(i) },
      spec: { hosts: poolHosts(i).map((h) => ({ name: h.name, uri: uris.get(h.name)!, hypervisor: 'kvm' })) },
    });
  }

  const entry = await controllerEntry();
  process.stdout.write(
    `controller environment from deploy/base/deployment.yaml: ${
      Object.keys(controllerEnv).length
        ? Object.entries(controllerEnv)
            .map(([k, v]) => `${k}="${v}"`)
            .join(' ')
        : DEPLOY_ENV
          ? 'none set there (node sizes its heap for this machine)'
          : 'not used (--no-deploy-env)'
    }\n`,
  );
  const beforeController = await apiserverRequests(kubectl, info.kubeconfig);
  const controllerStartedAt = performance.now();
  const controller = await startController(entry, info.kubeconfig);
  await changed.until(
    () =>
      Array.from({ length: POOL_COUNT }, (_, i) => i).every(
        (i) => (pools.get(poolName(i))?.status as HostPool['status'] | undefined)?.readyHosts === poolHosts(i).length,
      ),
    120_000,
    () => `all ${HOSTS} hosts ready (pool status: ${JSON.stringify(pools.get(POOL)?.status?.conditions)})`,
  );
  const poolReadyMs = performance.now() - controllerStartedAt;
  const rssIdleKiB = controller.rss.lastKiB;
  const [etcdPid, apiserverPid] = info.pids;
  const cpuPids = {
    controller: controller.child.pid,
    'kube-apiserver': apiserverPid,
    etcd: etcdPid,
    bench: process.pid,
  };
  const cpuBeforeBurst = cpuSample(cpuPids);
  const loadBefore = loadavg()[0]!;
  const memoryIdle = await memoryBreakdown(controller);
  if (HEAP_SNAPSHOT) await heapSnapshot(controller);
  const beforeBurst = await apiserverRequests(kubectl, info.kubeconfig);

  // ---- burst --------------------------------------------------------------------------------
  const names = Array.from({ length: VMS }, (_, i) => `vm-${String(i).padStart(4, '0')}`);
  const burstStart = performance.now();
  await pooled(names, BATCH, async (name, i) => {
    createdAt.set(name, performance.now());
    await kube.create(VIRTUAL_MACHINE, vmObject(name, NAMESPACE, poolName(i % POOL_COUNT)));
  });
  const appliedMs = performance.now() - burstStart;
  await changed.until(
    () => names.every((n) => readyAt.has(n)),
    CONVERGE_DEADLINE_MS,
    () => `all ${VMS} VMs Ready (${names.filter((n) => readyAt.has(n)).length} are)`,
  );
  const allReadyMs = Math.max(...names.map((n) => readyAt.get(n)!)) - burstStart;
  const burstLatencies = names.map((n) => readyAt.get(n)! - createdAt.get(n)!).sort((a, b) => a - b);
  const rssAfterBurstKiB = controller.rss.lastKiB;
  const memoryAfterBurst = await memoryBreakdown(controller);
  const cpuAfterBurst = cpuSample(cpuPids);
  const loadAfterBurst = loadavg()[0]!;
  const afterBurst = await apiserverRequests(kubectl, info.kubeconfig);

  // What the controller reports: every VM on one host, its domain's UUID its own UID.
  const perHost = new Map<string, number>();
  const problems: string[] = [];
  for (const name of names) {
    const vm = vms.get(`${NAMESPACE}/${name}`);
    if (!vm?.status?.host) problems.push(`${name}: no host`);
    else perHost.set(vm.status.host, (perHost.get(vm.status.host) ?? 0) + 1);
    if (vm?.status?.domainUUID !== vm?.metadata.uid)
      problems.push(`${name}: domainUUID ${vm?.status?.domainUUID} ≠ uid ${vm?.metadata.uid}`);
  }

  // ---- the burst's Events written, then a quiet window: settled, nothing to do ---------------
  const eventsTrailMs = await eventsWritten(controller.metricsUrl, EVENTS_DEADLINE_MS);
  const afterEvents = await apiserverRequests(kubectl, info.kubeconfig);
  const cpuBeforeQuiet = cpuSample(cpuPids);
  const workBeforeQuiet = await reconcileWork(controller.metricsUrl);
  await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
  const afterQuiet = await apiserverRequests(kubectl, info.kubeconfig);
  const cpuAfterQuiet = cpuSample(cpuPids);
  const workAfterQuiet = await reconcileWork(controller.metricsUrl);
  const loadQuiet = loadavg()[0]!;
  if (HEAP_SNAPSHOT) await heapSnapshot(controller);

  // ---- one at a time: apply → Ready with an idle controller -------------------------------------
  const singles = Array.from({ length: SINGLE }, (_, i) => `single-${String(i).padStart(3, '0')}`);
  for (const name of singles) {
    createdAt.set(name, performance.now());
    await kube.create(VIRTUAL_MACHINE, vmObject(name, NAMESPACE, POOL));
    await changed.until(
      () => readyAt.has(name),
      60_000,
      () => `${name} Ready (status: ${JSON.stringify(vms.get(`${NAMESPACE}/${name}`)?.status)})`,
    );
  }
  const singleLatencies = singles.map((n) => readyAt.get(n)! - createdAt.get(n)!).sort((a, b) => a - b);
  const afterSingles = await apiserverRequests(kubectl, info.kubeconfig);
  const cpuAfterSingles = cpuSample(cpuPids);
  if (TRACE) await new Promise((resolve) => setTimeout(resolve, 1000)); // the preload writes every 500 ms
  const reconciles = await controllerMetric(controller.metricsUrl, 'virtfleet_reconcile_total{');
  const retries = await controllerMetric(controller.metricsUrl, 'virtfleet_workqueue_retries_total{');
  const memory = await controllerMetric(controller.metricsUrl, 'virtfleet_nodejs_');
  const gcSeconds = [...memory]
    .filter(([k]) => k.startsWith('virtfleet_nodejs_gc_duration_seconds_sum'))
    .map(([k, v]) => `${/kind="([^"]+)"/.exec(k)?.[1] ?? '?'} ${v.toFixed(2)} s`)
    .join(', ');
  const rssEndKiB = controller.rss.lastKiB;
  const memoryEnd = await memoryBreakdown(controller);
  const rssPeakKiB = controller.rss.peakKiB;
  controller.stopSampling();

  // ---- raw libvirt, same XML, same kind of hosts --------------------------------------------------
  const all = [...names, ...singles].map((n) => vms.get(`${NAMESPACE}/${n}`)!);
  const raw = await rawLibvirt(hosts, decls, pools.get(POOL)!, all);
  const rawSorted = [...raw.sequential].sort((a, b) => a - b);
  const validatedSorted = [...raw.validated].sort((a, b) => a - b);
  const simulated = await hostsMemory(hosts, decls, pools.get(POOL)!, all);

  // ---- API requests: the server's count minus the bench's own ---------------------------------------
  const vmCreates = (n: number): Counts => new Map([['POST virtualmachines', n]]);
  const startup = diff(beforeBurst, beforeController);
  const burst = subtract(diff(afterBurst, beforeBurst), vmCreates(VMS));
  const trail = diff(afterEvents, afterBurst);
  const quiet = diff(afterQuiet, afterEvents);
  const single = subtract(diff(afterSingles, afterQuiet), vmCreates(SINGLE));

  // ---- figures ------------------------------------------------------------------------------------
  const MiB = (kib: number) => (kib / 1024).toFixed(0);
  const singleP50 = percentile(singleLatencies, 50);
  const rawP50 = percentile(rawSorted, 50);
  const hostsPartKiB = simulated.hostsKiB - simulated.baseKiB;
  const domainsPartKiB = simulated.domainsKiB - simulated.hostsKiB;
  const lines = [
    '',
    `control plane + CRDs + ${HOSTS} hosts ready: pool Ready ${ms(poolReadyMs)} ms after the controller started`,
    '',
    `burst: ${VMS} VMs created ${BATCH} at a time in ${ms(appliedMs)} ms`,
    `  first apply → all Ready        ${(allReadyMs / 1000).toFixed(2)} s            (budget < 30 s)`,
    `  apply → Ready p50 / p99 / max  ${ms(percentile(burstLatencies, 50))} / ${ms(percentile(burstLatencies, 99))} / ${ms(burstLatencies.at(-1)!)} ms (queueing included)`,
    `  CPU used during it: ${cpuDiff(cpuAfterBurst, cpuBeforeBurst)} (machine: ${cpus().length} cores, load average ${loadBefore.toFixed(1)} before, ${loadAfterBurst.toFixed(1)} after)`,
    `  placement (from status)        ${perHost.size} hosts used, ${Math.min(...perHost.values())}..${Math.max(...perHost.values())} VMs per host; ${problems.length === 0 ? 'every VM has a host and domainUUID = uid' : `PROBLEMS: ${problems.slice(0, 5).join('; ')}`}`,
    '',
    `settled (${VMS} VMs Ready, Events written), ${QUIET_WINDOW_MS / 1000} s with nothing to do; load average ${loadQuiet.toFixed(1)}:`,
    ...settledCost({
      windowMs: QUIET_WINDOW_MS,
      hosts: HOSTS,
      heartbeatSeconds: 2,
      before: workBeforeQuiet,
      after: workAfterQuiet,
      cpu: cpuAfterQuiet.controller! - cpuBeforeQuiet.controller!,
      jsCpu: cpuAfterQuiet['controller (JS thread)']! - cpuBeforeQuiet['controller (JS thread)']!,
    }),
    '',
    `one at a time (${SINGLE} VMs, idle controller, ${VMS} VMs already running):`,
    `  CPU used: ${cpuDiff(cpuAfterSingles, cpuAfterQuiet)}`,
    `  apply → Ready p50 / p99        ${ms(singleP50)} / ${ms(percentile(singleLatencies, 99))} ms`,
    `  where the time goes (p50 from the create request, as the bench's watch saw each step):`,
    ...[...new Set([...steps.values()].flatMap((m) => [...m.keys()]))].sort().map((stage) => {
      const offsets = singles.flatMap((n) => {
        const t = steps.get(n)?.get(stage);
        return t === undefined ? [] : [t - createdAt.get(n)!];
      });
      return `    ${stage.padEnd(40)} ${ms(
        percentile(
          offsets.sort((a, b) => a - b),
          50,
        ),
      )} ms (${offsets.length} VMs)`;
    }),
    ...(TRACE
      ? traceReport(
          singles,
          new Map(singles.map((n) => [n, vms.get(`${NAMESPACE}/${n}`)?.metadata.uid ?? ''])),
          createdAt,
          readyAt,
          new Map(singles.map((n) => [n, readyAt.get(n)! - createdAt.get(n)!])),
        )
      : []),
    `raw libvirt define+start (binding, in-process, same XML, same kind of hosts):`,
    `  per VM p50 / p99               ${ms(rawP50)} / ${ms(percentile(rawSorted, 99))} ms`,
    `  per VM p50 / p99, defined with libvirt's schema validation (${validatedSorted.length} VMs; the controller now asks it once per shape of definition): ${ms(percentile(validatedSorted, 50))} / ${ms(percentile(validatedSorted, 99))} ms`,
    `  all ${all.length} at once, 16 in flight  ${ms(raw.parallelWallMs)} ms`,
    `controller overhead per VM (p50, one at a time): ${ms(singleP50 - rawP50)} ms over raw; ratio ${(singleP50 / rawP50).toFixed(1)}×   (budget < 50 ms)` +
      `; ${ms(singleP50 - percentile(validatedSorted, 50))} ms over raw with validation`,
    `controller wall time vs raw for the burst: ${(allReadyMs / 1000).toFixed(2)} s vs ${(raw.parallelWallMs / 1000).toFixed(2)} s; ratio ${(allReadyMs / raw.parallelWallMs).toFixed(0)}×`,
    '',
    `controller RSS (VmRSS, sampled every 100 ms; budget < 200 MB):`,
    `  idle:        ${memoryIdle}`,
    `  after burst: ${memoryAfterBurst}`,
    `  end:         ${memoryEnd}; external ${MiB((memory.get('virtfleet_nodejs_external_memory_bytes') ?? 0) / 1024)} MiB`,
    `  garbage collection over the whole run: ${gcSeconds || 'not reported'}`,
    `  idle with ${HOSTS} hosts ${MiB(rssIdleKiB)} MiB; after burst ${MiB(rssAfterBurstKiB)} MiB; end ${MiB(rssEndKiB)} MiB; peak ${MiB(rssPeakKiB)} MiB`,
    `  of which the simulated hosts (test:/// state in the controller's process; none on real hosts), measured in a plain process:`,
    `    ${simulated.hosts} hosts opened and subscribed +${MiB(hostsPartKiB)} MiB; ${simulated.domains} domains defined and started +${MiB(domainsPartKiB)} MiB`,
    `  the controller's own (RSS minus the simulated hosts): idle ${MiB(rssIdleKiB - hostsPartKiB)} MiB; end ${MiB(rssEndKiB - hostsPartKiB - domainsPartKiB)} MiB; peak ~${MiB(rssPeakKiB - hostsPartKiB - domainsPartKiB)} MiB`,
    '',
    `API requests by the controller (kube-apiserver apiserver_request_total, minus the bench's own creates):`,
    `  startup until pool Ready: ${total(startup)} (writes ${total(startup, isWrite)})`,
    breakdown(startup),
    `  burst of ${VMS}: ${total(burst)} (writes ${total(burst, isWrite)}; ${(total(burst) / VMS).toFixed(1)} per VM)`,
    breakdown(burst),
    `  after all were Ready, until the burst's Events were written and the work queues empty (${ms(eventsTrailMs)} ms): ${total(trail)} (writes ${total(trail, isWrite)})`,
    breakdown(trail),
    `  burst and its Events together: ${((total(burst) + total(trail)) / VMS).toFixed(1)} per VM`,
    `  quiet ${QUIET_WINDOW_MS / 1000} s once settled: ${total(quiet)} (writes ${total(quiet, isWrite)})`,
    breakdown(quiet),
    `  ${SINGLE} one at a time: ${total(single)} (writes ${total(single, isWrite)}; ${(total(single) / SINGLE).toFixed(1)} per VM)`,
    breakdown(single),
    `  (WATCH requests are counted when they end; a LIST/WATCH of the bench's own watch is in "startup" at most)`,
    '',
    `controller reconciles: ${[...reconciles].map(([k, v]) => `${k.replace(/^virtfleet_reconcile_total/, '')} ${v}`).join(', ')}`,
    `controller retries: ${[...retries].map(([k, v]) => `${k.replace(/^virtfleet_workqueue_retries_total/, '')} ${v}`).join(', ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeFileSync(join(dir, 'figures.txt'), lines.join('\n'));
}

try {
  await main();
} catch (error) {
  process.stderr.write(`scale bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
