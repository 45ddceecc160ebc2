// The recovery bench: prints figures, passes or fails nothing (issue 6, "Done means" 5).
//
//   npx tsx bench/recovery/recovery.ts [--crashes 20] [--rig-guests 10] [--sim-vms 100] [--keep]
//     [--heartbeat-seconds 2] [--failure-threshold 3] [--no-rig] [--no-sim] [--sim-priorities 100,0,-100]
//
// 1. Its own etcd + kube-apiserver (ControlPlane in a temp dir, unsafeNoFsync) and the CRDs.
// 2. The controller as a child process (`virtfleet controller` through tsx), as deployed: its own
//    event loop, so that the bench's watch, its /proc sampling and its console reading never
//    delay the controller's timers (heartbeats are 1 s here), and its /metrics give the
//    controller's own view (virtfleet_recovery_duration_seconds) next to the bench's.
// 3. Crashes (real rig, `--crashes` times): one kernel-boot guest on a real libvirtd host (test/rig),
//    restartBackoff 1 s / 1 s, so a run of 2 s resets the back-off (crash-backoff.ts, stableAfterMs)
//    and every crash is a "first" crash, restarted at once; before each kill the bench waits until
//    the guest has run that long. kill -9 of its QEMU → libvirt's lifecycle `stopped` event → the
//    `started` event of the new QEMU (the bench's own connection to the host) → the guest's ready
//    marker on its serial console. p50 / p99 (nearest rank: with 20 crashes p99 is the slowest).
// 4. Host failure on the rig: `--rig-guests` guests on one host of a 3-host rig (created while it
//    is the pool's only host; the two others then join), the host's fencing command a script that
//    SIGKILLs every process in the host's network namespace. Once the guests have booted (their
//    QEMUs' CPU use settled), the host's link is cut. Detection: cut → host NotReady in the pool
//    status (watch), cut → fencing command called (the script logs the time); total: cut → all
//    guests Running elsewhere (watch). A sampler counts live QEMUs per VM (`-uuid <UID>` in
//    /proc/*/cmdline) every 100 ms: never more than one.
// 5. Host failure on the test driver: `--sim-vms` VMs on one simulated host (libvirt test-driver
//    definition files, as bench/scale), three other hosts join, fencing command /bin/true; the
//    host "fails" by its URI becoming unreachable (qemu+tcp://127.0.0.1:1/system, as
//    test/integration/controllers/host-failure.test.ts does); the VMs in spec.recovery.priority
//    classes (`--sim-priorities`), whose times are printed per class. NOTE: that is a refused connection,
//    seen at once; it says nothing about how fast a silent host is detected (that is step 4).
// 6. A table of the figures against the aims of issue 6.
// Everything it starts (control plane, controller, rig, temp dirs) is stopped and removed on the
// way out, also on failure and on Ctrl-C; `--keep` keeps the temp dir (controller log, fence log).
// Needs root for the rig (steps 3 and 4; `--no-rig` skips them).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { HostPool } from '../../src/api/hostpool.js';
import { stableAfterMs } from '../../src/controllers/crash-backoff.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { freePort } from '../../src/devstack/ports.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { createLogger } from '../../src/observability/logging.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { testHosts } from '../../test/integration/hypervisor/test-hosts.js';
import { readyMarker } from '../../test/rig/console.js';
import { guestImage, type GuestImage } from '../../test/rig/guest.js';
import { CopiesChecker, procStat } from '../../test/rig/qemu-copies.js';
import { Rig } from '../../test/rig/rig.js';
import { lifecycleEvent } from '../../test/rig/waiters.js';
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

const CRASHES = arg('crashes', 20);
const RIG_GUESTS = arg('rig-guests', 10);
const SIM_VMS = arg('sim-vms', 100);
const KEEP = process.argv.includes('--keep');
const RIG = !process.argv.includes('--no-rig');
const SIM = !process.argv.includes('--no-sim');
/**
 * `--sim-priorities 100,0,-100`: spec.recovery.priority classes of the test-driver VMs, an equal
 * share each, the lowest created first (so that creation order would favour them): the bench
 * prints time to Running elsewhere per class.
 */
const SIM_PRIORITIES = (
  process.argv.includes('--sim-priorities') ? process.argv[process.argv.indexOf('--sim-priorities') + 1]! : '100,0,-100'
)
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const NAMESPACE = 'default';
// The API's defaults unless asked (--heartbeat-seconds): what a pool gets without a failureDetection.
const FAILURE_DETECTION = {
  heartbeatPeriodSeconds: arg('heartbeat-seconds', 2),
  failureThreshold: arg('failure-threshold', 3),
};
const BACKOFF = { initialSeconds: 1, maxSeconds: 1 };
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';
const GiB = 1024 * 1024; // KiB

const AIMS = {
  crashP99Ms: 2_000,
  detectMs: 10_000,
  recoverMs: 20_000,
};

const root = repoRoot();
const dir = mkdtempSync(join(tmpdir(), 'virtfleet-recovery-'));
const controllerLog = join(dir, 'controller.log');
const logger = createLogger('warn');

// Everything started is stopped and removed on the way out, whatever happens.
const { steps: cleanups, cleanup } = cleanupOnExit(dir, KEEP);

// ---- small helpers ---------------------------------------------------------------------------

const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
function say(line: string): void {
  process.stdout.write(`${line}\n`);
}
function load(): string {
  return `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`;
}

function condition(vm: VmObject | undefined, type: string): Condition | undefined {
  return (vm?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}
const isRunning = (vm: VmObject | undefined) =>
  vm?.status?.phase === 'Running' && condition(vm, 'Ready')?.status === 'True';
type Pool = PoolObject & { status?: HostPool['status'] };

// ---- /proc: CPU time (QEMUs by UUID: test/rig/qemu-copies.ts) ----------------------------------

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const fields = procStat(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / 100 : 0;
}

// ---- the controller --------------------------------------------------------------------------

interface ControllerProcess {
  child: ChildProcess;
  metricsUrl: string;
}

async function startController(kubeconfig: string): Promise<ControllerProcess> {
  const health = await freePort();
  const metrics = await freePort();
  const log = openSync(controllerLog, 'a');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'controller',
      '--kubeconfig',
      kubeconfig,
      '--health-address',
      `127.0.0.1:${health}`,
      '--metrics-address',
      `127.0.0.1:${metrics}`,
      '--log-level',
      'info',
    ],
    { cwd: root, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(() => stopChild(child, exited));
  await controllerReady(child, health, controllerLog);
  return { child, metricsUrl: `http://127.0.0.1:${metrics}/metrics` };
}

/** `virtfleet_recovery_duration_seconds` of one kind, as the controller measured it: count and sum. */
async function recoveryMetric(
  controller: ControllerProcess,
  kind: 'crash' | 'host',
): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(controller.metricsUrl)).text();
  const value = (name: string) => Number(new RegExp(`^${name}\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    count: value('virtfleet_recovery_duration_seconds_count'),
    sum: value('virtfleet_recovery_duration_seconds_sum'),
  };
}

/** The controller's log lines (JSON) from `since` (epoch ms). */
function controllerLines(since: number): Array<Record<string, unknown>> {
  if (!existsSync(controllerLog)) return [];
  return readFileSync(controllerLog, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    })
    .filter((line) => {
      const t = typeof line.time === 'number' ? line.time : Date.parse(String(line.time));
      return t >= since;
    });
}

function missedBeats(pool: string, host: string, since: number): number {
  return controllerLines(since).filter(
    (line) => line.msg === 'heartbeat missed' && line.pool === pool && line.host === host,
  ).length;
}

// ---- the run ---------------------------------------------------------------------------------------

interface Row {
  figure: string;
  measured: string;
  aim: string;
  met?: boolean;
}
const rows: Row[] = [];
const notes: string[] = [];

async function main(): Promise<void> {
  say(
    `virtfleet recovery bench: ${RIG ? `${CRASHES} crashes and a host failure with ${RIG_GUESTS} guests on the rig` : 'no rig'}${SIM ? `, a host failure with ${SIM_VMS} VMs on the test driver` : ''}; temp dir ${dir}`,
  );
  say(
    `machine: ${load()}; controller: a child process (src/cli/main.ts through tsx), heartbeats every ${FAILURE_DETECTION.heartbeatPeriodSeconds} s, failure after ${FAILURE_DETECTION.failureThreshold} missed`,
  );
  const info = await startControlPlane(dir, root, cleanups);

  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const kube = new KubeClient(kc, 'virtfleet-recovery-bench');
  const changed = new Waiter(100);
  const cache = new Cache(kube, logger);
  const vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
  const pools = cache.informerFor<PoolObject>(HOST_POOL, {});
  /** Per VM name: when the watch first saw it Running on a host other than the one given in `movedFrom`. */
  const movedAt = new Map<string, number>();
  const movedFrom = new Map<string, string>();
  /** Per VM name: when the watch first saw its placement on another host (written before anything is made there). */
  const placedAt = new Map<string, number>();
  /** Per pool/host: when the watch first saw it not ready (since the last reset), and why. */
  const notReadyAt = new Map<string, { at: number; reason: string }>();
  /** Per pool/host: every change of readiness the watch saw. */
  const readiness = new Map<string, Array<{ at: number; ready: boolean; reason: string }>>();
  const fencedAt = new Map<string, number>();
  let crashLoops = 0;
  vms.on((event) => {
    const vm = event.object;
    const name = vm.metadata.name ?? '';
    const from = movedFrom.get(name);
    if (event.type !== 'delete' && from && vm.status?.host && vm.status.host !== from) {
      if (!placedAt.has(name)) placedAt.set(name, Date.now());
      if (!movedAt.has(name) && isRunning(vm)) movedAt.set(name, Date.now());
    }
    if (vm.status?.phase === 'CrashLoopBackOff') crashLoops++;
    changed.poke();
  });
  pools.on((event) => {
    const pool = event.object as Pool;
    for (const host of pool.status?.hosts ?? []) {
      const key = `${pool.metadata.name}/${host.name}`;
      const now = Date.now();
      if (!host.ready && !notReadyAt.has(key)) notReadyAt.set(key, { at: now, reason: host.reason ?? '' });
      if (host.fencing?.state === 'Fenced' && !fencedAt.has(key)) fencedAt.set(key, now);
      const changes = readiness.get(key) ?? [];
      if (changes.at(-1)?.ready !== host.ready) changes.push({ at: now, ready: host.ready, reason: host.reason ?? '' });
      readiness.set(key, changes);
    }
    changed.poke();
  });
  /** The host's NotReady spells since `since`, as "a–b s (reason)", relative to `since`. */
  function notReadySpells(key: string, since: number): string[] {
    const spells: string[] = [];
    let from: { at: number; reason: string } | undefined;
    for (const change of (readiness.get(key) ?? []).filter((c) => c.at >= since)) {
      if (!change.ready && !from) from = change;
      else if (change.ready && from) {
        spells.push(
          `${((from.at - since) / 1000).toFixed(1)}–${((change.at - since) / 1000).toFixed(1)} s (${from.reason})`,
        );
        from = undefined;
      }
    }
    if (from)
      spells.push(`${((from.at - since) / 1000).toFixed(1)} s– (${from.reason}; still NotReady when all were Running)`);
    return spells;
  }
  await watchUntilCleanup(cache, cleanups);

  const controller = await startController(info.kubeconfig);
  const vm = (name: string) => vms.get(`${NAMESPACE}/${name}`);
  const pool = (name: string) => pools.get(name) as Pool | undefined;
  const hostStatus = (poolName: string, host: string) => pool(poolName)?.status?.hosts?.find((h) => h.name === host);

  async function createPool(
    name: string,
    hosts: Array<Record<string, unknown>>,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await kube.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name },
      spec: { hosts, failureDetection: FAILURE_DETECTION, ...extra },
    });
    await changed.until(
      () => pool(name)?.status?.readyHosts === hosts.length,
      60_000,
      () => `pool ${name} ready: ${JSON.stringify(pool(name)?.status?.hosts)}`,
    );
  }
  /** Sets the pool's hosts; resolves once the controller wrote a status for that generation. */
  async function setHosts(name: string, hosts: Array<Record<string, unknown>>, readyHosts?: number): Promise<number> {
    const patched = (await kube.patch(HOST_POOL, undefined, name, { spec: { hosts } })) as PoolObject;
    const generation = patched.metadata.generation;
    await changed.until(
      () =>
        pool(name)?.status?.observedGeneration === generation &&
        (readyHosts === undefined || pool(name)?.status?.readyHosts === readyHosts),
      60_000,
      () =>
        `pool ${name} generation ${generation} observed${readyHosts === undefined ? '' : ` with ${readyHosts} hosts ready`}: ${JSON.stringify(pool(name)?.status?.hosts)}`,
    );
    return Date.now();
  }
  async function deleteVms(names: string[]): Promise<void> {
    await pooled(names, 16, async (name) => {
      await kube.delete(VIRTUAL_MACHINE, NAMESPACE, name).catch(() => undefined);
    });
    await changed.until(
      () => names.every((name) => !vm(name)),
      120_000,
      () => `${names.filter((n) => vm(n)).length} VMs deleted`,
    );
  }
  function vmObject(name: string, poolName: string, spec: Record<string, unknown>): VmObject {
    return {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name, namespace: NAMESPACE },
      spec: { hostPoolRef: { name: poolName }, memory: '128Mi', ...spec },
    } as unknown as VmObject;
  }

  if (RIG) {
    const image = await guestImage();
    const rig = await Rig.start({ hosts: 3, diskLeases: false });
    cleanups.push(() => rig.teardown());
    const poolHost = (i: number, extra: Record<string, unknown> = {}) => ({
      name: `rig-${i}`,
      uri: rig.hosts[i]!.uri,
      ...extra,
    });
    await crashes(rig, image);
    await rigHostFailure(rig, image, poolHost);
  }
  if (SIM) await simHostFailure();

  // ---- the table ---------------------------------------------------------------------------------
  say('');
  say(`figures (${load()} at the end):`);
  const width = Math.max(...rows.map((r) => r.figure.length));
  const mwidth = Math.max(...rows.map((r) => r.measured.length));
  for (const row of rows) {
    say(
      `  ${row.figure.padEnd(width)}  ${row.measured.padEnd(mwidth)}  aim ${row.aim.padEnd(8)} ${row.met === undefined ? '' : row.met ? 'met' : 'MISSED'}`,
    );
  }
  for (const note of notes) say(`  note: ${note}`);

  // ---- 3. crashes --------------------------------------------------------------------------------
  async function crashes(rig: Rig, image: GuestImage): Promise<void> {
    const POOL = 'rec-crash';
    const host = rig.hosts[2]!;
    say('');
    say(
      `crashes: ${CRASHES} × kill -9 of one guest's QEMU on rig-2 (restartBackoff ${BACKOFF.initialSeconds} s / ${BACKOFF.maxSeconds} s: a run of ${stableAfterMs(BACKOFF) / 1000} s resets it); ${load()}`,
    );
    await createPool(POOL, [{ name: 'rig-2', uri: host.uri }]);
    await kube.create(
      VIRTUAL_MACHINE,
      vmObject('crashy', POOL, {
        hypervisor: 'kvm',
        kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' },
        recovery: { restartBackoff: BACKOFF },
      }),
    );
    await changed.until(
      () => isRunning(vm('crashy')),
      120_000,
      () => `crashy Running: ${JSON.stringify(vm('crashy')?.status)}`,
    );
    const uuid = vm('crashy')!.metadata.uid!;
    const conn = await LibvirtConnection.open(host.uri);
    const metricBefore = await recoveryMetric(controller, 'crash');
    const loopsBefore = crashLoops;
    const stopped: number[] = [];
    const started: number[] = [];
    const marker: number[] = [];
    let startedAt = Date.now();
    try {
      for (let i = 0; i < CRASHES; i++) {
        // The back-off resets after a stable run: wait until this one has been that long.
        const wait = startedAt + stableAfterMs(BACKOFF) + 300 - Date.now();
        if (wait > 0) await sleep(wait);
        const restartsBefore = vm('crashy')?.status?.restarts ?? 0;
        const pid = host.qemuPid(vm('crashy')!.status!.domainName!);
        const stoppedEvent = lifecycleEvent(conn, uuid, 'stopped', 30_000);
        const startedEvent = lifecycleEvent(conn, uuid, 'started', 60_000);
        const killedAt = Date.now();
        process.kill(pid, 'SIGKILL');
        await stoppedEvent;
        stopped.push(Date.now() - killedAt);
        await startedEvent;
        startedAt = Date.now();
        started.push(startedAt - killedAt);
        // The console opened now (the domain has just started).
        await readyMarker(conn, uuid, 60_000);
        marker.push(Date.now() - killedAt);
        await changed.until(
          () => isRunning(vm('crashy')) && (vm('crashy')?.status?.restarts ?? 0) === restartsBefore + 1,
          30_000,
          () => `crashy Running with restart ${restartsBefore + 1}: ${JSON.stringify(vm('crashy')?.status)}`,
        );
        process.stdout.write(
          `  crash ${String(i + 1).padStart(2)}: stopped event ${stopped.at(-1)} ms, started again ${started.at(-1)} ms, guest ready ${marker.at(-1)} ms\n`,
        );
      }
    } finally {
      await conn.close();
    }
    // The same domain started by hand, for comparison: what domainCreate alone costs on this host.
    const raw: number[] = [];
    const conn2 = await LibvirtConnection.open(host.uri);
    try {
      const rawUuid = randomUUID();
      const xml = (await conn2.domainGetXMLDesc(uuid, { inactive: true }))
        .replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${rawUuid}</uuid>`)
        .replace(/<name>[^<]*<\/name>/, '<name>bench-raw-create</name>')
        .replace(/<metadata>[\s\S]*?<\/metadata>/, ''); // not virtfleet's: no orphan report
      await conn2.defineXML(xml);
      try {
        for (let i = 0; i < 5; i++) {
          const t0 = Date.now();
          await conn2.domainCreate(rawUuid);
          raw.push(Date.now() - t0);
          await conn2.domainDestroy(rawUuid);
        }
      } finally {
        await conn2.domainDestroy(rawUuid).catch(() => undefined);
        await conn2.domainUndefine(rawUuid).catch(() => undefined);
      }
    } finally {
      await conn2.close();
    }
    const metric = await recoveryMetric(controller, 'crash');
    const controllerMean = ((metric.sum - metricBefore.sum) / Math.max(1, metric.count - metricBefore.count)) * 1000;
    say(`  kill → stopped event      p50 ${s(percentile(stopped, 50))}, p99 ${s(percentile(stopped, 99))}`);
    say(`  kill → started again      p50 ${s(percentile(started, 50))}, p99 ${s(percentile(started, 99))}`);
    const restart = started.map((t, i) => t - stopped[i]!);
    say(
      `    of which stopped event → started event (reconcile + domainCreate) p50 ${s(percentile(restart, 50))}, p99 ${s(percentile(restart, 99))}`,
    );
    say(
      `    raw domainCreate of the same XML by the bench (5 times): p50 ${s(percentile(raw, 50))}, max ${s(Math.max(...raw))}`,
    );
    say(`  kill → guest ready marker p50 ${s(percentile(marker, 50))}, p99 ${s(percentile(marker, 99))}`);
    say(
      `  the controller's own view (virtfleet_recovery_duration_seconds{kind="crash"}, failure seen → domain running): mean ${s(controllerMean)} over ${metric.count - metricBefore.count}`,
    );
    say(
      `  every crash restarted at once (no CrashLoopBackOff seen): ${crashLoops === loopsBefore ? 'yes' : `NO (${crashLoops - loopsBefore} CrashLoopBackOff statuses)`}; restarts counted: ${vm('crashy')?.status?.restarts}`,
    );
    rows.push({
      figure: `crash → QEMU started again, p50 / p99 (${CRASHES} crashes, rig)`,
      measured: `${s(percentile(started, 50))} / ${s(percentile(started, 99))}`,
      aim: '< 2 s p99',
      met: percentile(started, 99) < AIMS.crashP99Ms,
    });
    rows.push({
      figure: 'crash → guest ready marker, p50 / p99 (+ guest boot)',
      measured: `${s(percentile(marker, 50))} / ${s(percentile(marker, 99))}`,
      aim: '—',
    });
    await deleteVms(['crashy']);
    await kube.delete(HOST_POOL, undefined, POOL);
  }

  // ---- 4. host failure on the rig ------------------------------------------------------------------
  async function rigHostFailure(
    rig: Rig,
    image: GuestImage,
    poolHost: (i: number, extra?: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<void> {
    const POOL = 'rec-rig';
    const cut = rig.hosts[0]!;
    const names = Array.from({ length: RIG_GUESTS }, (_, i) => `guest-${String(i).padStart(2, '0')}`);
    say('');
    say(
      `rig host failure: ${RIG_GUESTS} guests on rig-0 of 3 rig hosts, rig-0's link cut, fencing = SIGKILL of everything in its network namespace`,
    );
    const fenceLog = join(dir, 'fence.log');
    const fenceScript = join(dir, 'fence.sh');
    writeFileSync(
      fenceScript,
      [
        '#!/bin/sh',
        `echo "$(date +%s%3N) host=$VIRTFLEET_HOST netns=$1" >> ${fenceLog}`,
        'ip netns pids "$1" | xargs -r kill -9',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(fenceScript, 0o755);
    // A rig host offers the machine's CPUs; 10 one-vCPU guests need the overcommit.
    await createPool(POOL, [poolHost(0)], { scheduling: { cpuOvercommit: 16 } });
    await pooled(names, 8, async (name) => {
      await kube.create(
        VIRTUAL_MACHINE,
        vmObject(name, POOL, {
          hypervisor: 'kvm',
          kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' },
        }),
      );
    });
    await changed.until(
      () => names.every((n) => isRunning(vm(n)) && vm(n)?.status?.host === 'rig-0'),
      300_000,
      () => `${names.filter((n) => isRunning(vm(n))).length} of ${RIG_GUESTS} Running on rig-0`,
    );
    await setHosts(
      POOL,
      [poolHost(0, { fencing: { method: 'command', command: [fenceScript, cut.netns] } }), poolHost(1), poolHost(2)],
      3,
    );

    // The guests boot under TCG (seconds of CPU each): cut only once that is over, so that the
    // detection is measured on a quiet machine, not on one busy booting guests.
    const pids = names.map((n) => cut.qemuPid(vm(n)!.status!.domainName!));
    const settleStart = Date.now();
    let rate = Infinity;
    for (let before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0); Date.now() - settleStart < 120_000;) {
      await sleep(1000);
      const now = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      rate = now - before;
      before = now;
      if (rate < 0.05 * RIG_GUESTS) break;
    }
    say(
      `  guests settled after ${s(Date.now() - settleStart)} (their QEMUs use ${rate.toFixed(2)} CPU s/s together); ${load()}`,
    );

    const uids = new Map(names.map((n) => [vm(n)!.metadata.uid!, n]));
    const checker = new CopiesChecker(() => uids);
    checker.start();
    const restartsBefore = new Map(names.map((n) => [n, vm(n)?.status?.restarts ?? 0]));
    for (const n of names) movedFrom.set(n, 'rig-0');
    const key = `${POOL}/rig-0`;
    notReadyAt.delete(key);
    fencedAt.delete(key);
    const metricBefore = await recoveryMetric(controller, 'host');
    // The bench's own connections to the two other hosts: when each moved guest's QEMU started.
    const uidToName = new Map(names.map((n) => [vm(n)!.metadata.uid!, n]));
    const qemuStartedAt = new Map<string, { at: number; host: string }>();
    const watchers = await Promise.all([1, 2].map((i) => LibvirtConnection.open(rig.hosts[i]!.uri)));
    const offs = watchers.map((conn, i) =>
      conn.onDomainEvent((event) => {
        const name = uidToName.get(event.domain.uuid);
        if (name && event.type === 'lifecycle' && event.event === 'started' && !qemuStartedAt.has(name))
          qemuStartedAt.set(name, { at: Date.now(), host: `rig-${i + 1}` });
      }),
    );
    const cutAt = Date.now();
    await cut.cutLink('link');
    await changed.until(
      () => names.every((n) => movedAt.has(n)),
      180_000,
      () =>
        `${names.filter((n) => movedAt.has(n)).length} of ${RIG_GUESTS} Running elsewhere; rig-0: ${JSON.stringify(hostStatus(POOL, 'rig-0'))}`,
    );
    await changed.until(
      () => fencedAt.has(key),
      10_000,
      () => 'rig-0 Fenced in status',
    );
    checker.sample();
    checker.stop();
    for (const off of offs) off();
    await Promise.all(watchers.map((conn) => conn.close()));
    const calls = readFileSync(fenceLog, 'utf8').trim().split('\n');
    const calledAt = Number(calls[0]!.split(' ')[0]);
    const times = names.map((n) => movedAt.get(n)! - cutAt);
    const detect = notReadyAt.get(key)!.at - cutAt;
    const total = Math.max(...times);
    const metric = await recoveryMetric(controller, 'host');
    const restarted = names.filter((n) => (vm(n)?.status?.restarts ?? 0) === restartsBefore.get(n)! + 1).length;
    const spread = new Map<string, number>();
    for (const n of names) spread.set(vm(n)?.status?.host ?? '?', (spread.get(vm(n)?.status?.host ?? '?') ?? 0) + 1);
    say(`  cut → rig-0 NotReady (pool status, watch)   ${s(detect)} (${notReadyAt.get(key)!.reason})`);
    say(`  cut → fencing command called                ${s(calledAt - cutAt)} (called ${calls.length}×)`);
    say(`  cut → Fenced (pool status, watch)           ${s(fencedAt.get(key)! - cutAt)}`);
    say(
      `  cut → first / median / all ${RIG_GUESTS} Running elsewhere ${s(Math.min(...times))} / ${s(percentile(times, 50))} / ${s(total)} (${[...spread].map(([h, c]) => `${c} on ${h}`).join(', ')}; ${restarted} with status.restarts + 1)`,
    );
    say(
      `  the controller's own view (virtfleet_recovery_duration_seconds{kind="host"}, host declared failed → VM running): mean ${s(((metric.sum - metricBefore.sum) / Math.max(1, metric.count - metricBefore.count)) * 1000)} over ${metric.count - metricBefore.count}`,
    );
    say(`  where the time went, per destination host (seconds after the cut):`);
    for (const h of ['rig-1', 'rig-2']) {
      const mine = names.filter((n) => vm(n)?.status?.host === h);
      const at = (m: Map<string, number>, n: string) => ((m.get(n)! - cutAt) / 1000).toFixed(1);
      const qemu = mine
        .map((n) => qemuStartedAt.get(n)?.at)
        .filter((t): t is number => t !== undefined)
        .sort((x, y) => x - y);
      const spells = notReadySpells(`${POOL}/${h}`, cutAt);
      say(
        `    ${h}: placed ${mine
          .map((n) => at(placedAt, n))
          .sort((x, y) => Number(x) - Number(y))
          .join(', ')}; QEMU started ${qemu.map((t) => ((t - cutAt) / 1000).toFixed(1)).join(', ')}; ` +
          `Running (watch) ${mine
            .map((n) => at(movedAt, n))
            .sort((x, y) => Number(x) - Number(y))
            .join(', ')}; NotReady ${spells.length ? spells.join(', ') : 'never'}`,
      );
    }
    say(
      `  rig-0 processes left: ${cut.pids().length}; copies checker: ${checker.sampling()}, most live QEMUs of one VM at once: ${checker.worst()}`,
    );
    const others = ['rig-1', 'rig-2'].map((h) => `${h} ${missedBeats(POOL, h, cutAt)}`);
    const flipped = ['rig-1', 'rig-2'].filter((h) => notReadySpells(`${POOL}/${h}`, cutAt).length > 0);
    say(
      `  heartbeats missed meanwhile by the hosts the guests moved to: ${others.join(', ')}${flipped.length ? `; declared NotReady: ${flipped.join(', ')}` : ''}`,
    );
    if (flipped.length > 0 || others.some((o) => !o.endsWith(' 0'))) {
      notes.push(
        `on the rig, the destination hosts missed heartbeats while starting the moved guests (${others.join(', ')}${flipped.length ? `; ${flipped.join(', ')} declared NotReady` : ''}): ` +
          'a heartbeat waits behind domainCreate calls on the same connection (one worker thread per connection)',
      );
    }
    rows.push({
      figure: 'rig: cut → host NotReady (detection)',
      measured: s(detect),
      aim: '< 10 s',
      met: detect < AIMS.detectMs,
    });
    rows.push({
      figure: 'rig: cut → fencing command called',
      measured: s(calledAt - cutAt),
      aim: '< 10 s',
      met: calledAt - cutAt < AIMS.detectMs,
    });
    rows.push({
      figure: `rig: cut → all ${RIG_GUESTS} guests Running elsewhere`,
      measured: s(total),
      aim: '< 20 s',
      met: total < AIMS.recoverMs,
    });
    rows.push({
      figure: 'rig: most live QEMUs of one VM at any sample',
      measured: String(checker.worst()),
      aim: '≤ 1',
      met: checker.worst() <= 1,
    });
    for (const n of names) movedFrom.delete(n);
    await deleteVms(names);
    await kube.delete(HOST_POOL, undefined, POOL);
  }

  // ---- 5. host failure on the test driver ----------------------------------------------------------
  async function simHostFailure(): Promise<void> {
    const POOL = 'rec-sim';
    const hosts = testHosts();
    cleanups.push(() => hosts.cleanup());
    // A holds all VMs at first (128 MiB, 1 vCPU each); B, C, D take them over.
    const decl = (name: string, cpus: number, memoryGiB: number) => ({
      name,
      uri: hosts.host(name, { cpus, memoryKiB: memoryGiB * GiB }),
      hypervisor: 'kvm',
    });
    const a = decl('sim-a', Math.max(16, Math.ceil(SIM_VMS / 4)), Math.max(16, Math.ceil(SIM_VMS / 8) + 4));
    const others = ['sim-b', 'sim-c', 'sim-d'].map((name) =>
      decl(name, Math.max(16, Math.ceil(SIM_VMS / 8)), Math.max(16, Math.ceil(SIM_VMS / 16) + 4)),
    );
    const fencing = { method: 'command', command: ['/bin/true'] };
    const names = Array.from({ length: SIM_VMS }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
    const priorityOf = new Map(
      names.map((n, i) => [n, SIM_PRIORITIES[Math.floor((i * SIM_PRIORITIES.length) / SIM_VMS)]!] as const),
    );
    say('');
    say(
      `test-driver host failure: ${SIM_VMS} VMs on sim-a, 3 more simulated hosts, fencing /bin/true; sim-a's URI becomes ${UNREACHABLE_URI}; ${load()}`,
    );
    await createPool(POOL, [a]);
    const createStart = Date.now();
    await pooled(names, 32, async (name) => {
      await kube.create(
        VIRTUAL_MACHINE,
        vmObject(name, POOL, {
          kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
          recovery: { priority: priorityOf.get(name) },
        }),
      );
    });
    await changed.until(
      () => names.every((n) => isRunning(vm(n)) && vm(n)?.status?.host === 'sim-a'),
      300_000,
      () => `${names.filter((n) => isRunning(vm(n))).length} of ${SIM_VMS} Running on sim-a`,
    );
    say(`  ${SIM_VMS} VMs Running on sim-a after ${s(Date.now() - createStart)}`);
    await setHosts(POOL, [{ ...a, fencing }, ...others], 4);
    const restartsBefore = new Map(names.map((n) => [n, vm(n)?.status?.restarts ?? 0]));
    for (const n of names) movedFrom.set(n, 'sim-a');
    const key = `${POOL}/sim-a`;
    notReadyAt.delete(key);
    fencedAt.delete(key);
    const metricBefore = await recoveryMetric(controller, 'host');
    const failAt = Date.now();
    await kube.patch(HOST_POOL, undefined, POOL, {
      spec: { hosts: [{ ...a, uri: UNREACHABLE_URI, fencing }, ...others] },
    });
    await changed.until(
      () => names.every((n) => movedAt.has(n)),
      180_000,
      () =>
        `${names.filter((n) => movedAt.has(n)).length} of ${SIM_VMS} Running elsewhere; sim-a: ${JSON.stringify(hostStatus(POOL, 'sim-a'))}`,
    );
    await changed.until(
      () => fencedAt.has(key),
      10_000,
      () => 'sim-a Fenced in status',
    );
    const times = names.map((n) => movedAt.get(n)! - failAt);
    const detect = notReadyAt.get(key)!.at - failAt;
    const total = Math.max(...times);
    const metric = await recoveryMetric(controller, 'host');
    const restarted = names.filter((n) => (vm(n)?.status?.restarts ?? 0) === restartsBefore.get(n)! + 1).length;
    const spread = new Map<string, number>();
    for (const n of names) spread.set(vm(n)?.status?.host ?? '?', (spread.get(vm(n)?.status?.host ?? '?') ?? 0) + 1);
    say(
      `  URI patch → sim-a NotReady (pool status)  ${s(detect)} (${notReadyAt.get(key)!.reason}: a refused connection, seen at once; not comparable to a silent host)`,
    );
    say(`  URI patch → Fenced (pool status)          ${s(fencedAt.get(key)! - failAt)}`);
    say(
      `  URI patch → first / median / all ${SIM_VMS} Running elsewhere ${s(Math.min(...times))} / ${s(percentile(times, 50))} / ${s(total)} (${[...spread].map(([h, c]) => `${c} on ${h}`).join(', ')}; ${restarted} with status.restarts + 1)`,
    );
    // recovery.priority: time to Running elsewhere per class, highest first.
    say(`  by spec.recovery.priority (the work queue's priority): first / median / last Running elsewhere`);
    for (const priority of [...SIM_PRIORITIES].reverse()) {
      const mine = names.filter((n) => priorityOf.get(n) === priority).map((n) => movedAt.get(n)! - failAt);
      say(
        `    priority ${String(priority).padStart(5)} (${mine.length} VMs)  ${s(Math.min(...mine))} / ${s(percentile(mine, 50))} / ${s(Math.max(...mine))}`,
      );
    }
    say(
      `  the controller's own view (host declared failed → VM running): mean ${s(((metric.sum - metricBefore.sum) / Math.max(1, metric.count - metricBefore.count)) * 1000)} over ${metric.count - metricBefore.count}`,
    );
    rows.push({
      figure: 'test driver: URI unreachable → host NotReady (refused connection)',
      measured: s(detect),
      aim: '< 10 s',
      met: detect < AIMS.detectMs,
    });
    rows.push({
      figure: `test driver: → all ${SIM_VMS} VMs Running elsewhere`,
      measured: s(total),
      aim: '< 20 s',
      met: total < AIMS.recoverMs,
    });
    for (const n of names) movedFrom.delete(n);
    await deleteVms(names);
  }
}

main()
  .catch((error: unknown) => {
    process.stderr.write(
      `recovery bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    if (existsSync(controllerLog)) {
      const tail = readFileSync(controllerLog, 'utf8')
        .split('\n')
        .filter((line) => /"level":(40|50|60)/.test(line))
        .slice(-20);
      if (tail.length > 0) process.stderr.write(`controller warnings and errors (last 20):\n${tail.join('\n')}\n`);
    }
    process.exitCode = 1;
  })
  .finally(() => cleanup());
