// Chaos (issue 5, "Done means" 3): while 200 VMs are being created, the controller process is
// killed with SIGKILL at random moments 10 times and restarted; at the end there are exactly
// 200 domains, each on one host, no orphans, every VM Ready.
//
// Why real libvirtd hosts (test/rig) and not libvirt's test driver: a test:/// host lives in
// the process that opened it, so a SIGKILL of the controller takes every domain with it, and
// no other process can see them. The test would pass however many duplicates or orphans the
// controller made before each kill. Here the domains live in libvirtd daemons that survive the
// kill, and this test counts them itself, on every host, through the binding.
//
// The trade-off: 200 booting Linux guests under TCG are too much for this machine, so the VMs
// have no kernel and no disk. Each is a real QEMU process, running (Ready in the controller's
// sense: the domain is running), with SeaBIOS finding nothing to boot. The guest OS is not what
// is under test here; the controller's bookkeeping is. A rig host offers the machine's CPUs (2),
// with the pool's maximum CPU overcommit (16) that is 32 one-vCPU VMs a host: 8 hosts.
//
// Needs root (the rig). Run alone:
//   node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
//     --selectProjects e2e --testPathPatterns controller-chaos
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { freePort } from '../../src/devstack/ports.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { createLogger } from '../../src/observability/logging.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Informer } from '../../src/runtime/informer.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { Rig } from '../rig/rig.js';

const VMS = 200;
const KILLS = 10;
const HOSTS = 8;
const NAMESPACE = 'default';
const POOL = 'chaos';
const WAVE = VMS / KILLS;

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-chaos-'));
const logFile = join(dir, 'controller.log');
const logger = createLogger('warn');

let plane: ControlPlane | undefined;
let rig: Rig | undefined;
let kube: KubeClient;
let stopWatch: AbortController | undefined;
let watching: Promise<void> | undefined;
let vms: Informer<VmObject>;
let pools: Informer<PoolObject>;
let kubeconfig = '';
let controller: ChildProcess | undefined;

/** Wakes waiters on every watch event; each waiter has its own deadline. */
const waiters = new Set<() => void>();
function poke(): void {
  for (const wake of [...waiters]) wake();
}
async function until(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what()}`);
    await new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(wake, Math.min(left, 1000));
      waiters.add(wake);
    });
  }
}

function condition(vm: VmObject | undefined, type: string): Condition | undefined {
  return (vm?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}
const isReady = (vm: VmObject | undefined) => condition(vm, 'Ready')?.status === 'True';

function lastLog(): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/** The controller as its own process, as deployed; resolves once it answers /readyz. */
async function startController(): Promise<ChildProcess> {
  const health = await freePort();
  const log = openSync(logFile, 'a');
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
      '',
      '--log-level',
      'warn',
    ],
    { cwd: repoRoot(), stdio: ['ignore', log, log] },
  );
  closeSync(log);
  controller = child;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the controller exited (code ${child.exitCode}):\n${lastLog()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${health}/readyz`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the controller did not answer /readyz within 60 s:\n${lastLog()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function killController(): Promise<void> {
  const child = controller;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

function vmObject(name: string): VmObject {
  // No kernel, no disk: a real QEMU process per VM, running SeaBIOS (see the top of the file).
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NAMESPACE },
    spec: { hostPoolRef: { name: POOL }, memory: '16Mi', runStrategy: 'Always' },
  } as unknown as VmObject;
}

beforeAll(async () => {
  plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
  process.once('exit', () => plane?.killNow());
  const info = await plane.start();
  kubeconfig = info.kubeconfig;
  await installCrds(info.binaries.kubectl, kubeconfig, repoRoot());
  rig = await Rig.start({ hosts: HOSTS, diskLeases: false });

  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  kube = new KubeClient(kc, 'virtfleet-chaos-test');
  const cache = new Cache(kube, logger);
  vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
  pools = cache.informerFor<PoolObject>(HOST_POOL, {});
  vms.on(poke);
  pools.on(poke);
  stopWatch = new AbortController();
  watching = cache.run(stopWatch.signal);
  await cache.waitForSync();

  await kube.create(HOST_POOL, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name: POOL },
    spec: {
      hosts: rig.hosts.map((host, i) => ({ name: `rig-${i}`, uri: host.uri })),
      scheduling: { strategy: 'spread', cpuOvercommit: 16, memoryOvercommit: 1 },
    },
  });
}, 240_000);

afterAll(async () => {
  await killController();
  stopWatch?.abort();
  await watching;
  await rig?.teardown();
  await plane?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('controller chaos on real libvirtd hosts', () => {
  it(`creates ${VMS} VMs through ${KILLS} SIGKILLs of the controller: ${VMS} domains, one each, no orphans, all Ready`, async () => {
    const names = Array.from({ length: VMS }, (_, i) => `chaos-${String(i).padStart(3, '0')}`);
    const kills: string[] = [];
    for (let life = 0; life < KILLS; life++) {
      await startController();
      // This life's wave of creates runs on while the kill comes at a random moment: during
      // the creates, the placements, the defines or the starts.
      const wave = names.slice(life * WAVE, (life + 1) * WAVE);
      const creating = Promise.all(wave.map((name) => kube.create(VIRTUAL_MACHINE, vmObject(name))));
      const moment = Math.floor(Math.random() * 4000);
      await new Promise((resolve) => setTimeout(resolve, moment));
      const provisioned = vms.list().filter((vm) => condition(vm, 'Provisioned')?.status === 'True').length;
      await killController();
      kills.push(`${moment} ms (${provisioned} provisioned)`);
      await creating;
    }
    await startController();
    await until(
      () => names.every((name) => isReady(vms.get(`${NAMESPACE}/${name}`))),
      600_000,
      () =>
        `all ${VMS} VMs Ready after kills at ${kills.join(', ')}: ${names.filter((n) => isReady(vms.get(`${NAMESPACE}/${n}`))).length} are\n${lastLog()}`,
    );

    // What the controller reports: each VM on one host, its domain's UUID its own UID.
    const byName = new Map(names.map((name) => [name, vms.get(`${NAMESPACE}/${name}`)!]));
    const hostOf = new Map<string, string>(); // uid → host in status
    for (const [name, vm] of byName) {
      expect({ name, domainUUID: vm.status?.domainUUID }).toEqual({ name, domainUUID: vm.metadata.uid });
      expect(vm.status?.host).toMatch(/^rig-\d$/);
      hostOf.set(vm.metadata.uid!, vm.status!.host!);
    }
    expect(hostOf.size).toBe(VMS);

    // What the hosts have, asked directly: exactly those domains, each on its host, running.
    const found = new Map<string, string[]>(); // uuid → hosts that have it
    const connections = await Promise.all(rig!.hosts.map((host) => LibvirtConnection.open(host.uri)));
    try {
      for (const [i, conn] of connections.entries()) {
        for (const domain of await conn.listAllDomains()) {
          found.set(domain.uuid, [...(found.get(domain.uuid) ?? []), `rig-${i}`]);
          expect({ uuid: domain.uuid, state: domain.state }).toEqual({ uuid: domain.uuid, state: 'running' });
        }
      }
    } finally {
      await Promise.all(connections.map((conn) => conn.close()));
    }
    const orphans = [...found.keys()].filter((uuid) => !hostOf.has(uuid));
    const twice = [...found].filter(([, hosts]) => hosts.length > 1);
    const misplaced = [...hostOf].filter(([uid, host]) => found.get(uid)?.[0] !== host);
    expect({ orphans, twice, misplaced, domains: found.size }).toEqual({
      orphans: [],
      twice: [],
      misplaced: [],
      domains: VMS,
    });
  }, 1_200_000);
});
