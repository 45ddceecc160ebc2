// Maintenance end to end on real libvirtd hosts (test/rig) with real QEMU guests (issue 6,
// Done 3): two guests live-migrate off a host put in maintenance while their serial output goes
// on — the guest's heartbeat counter continues on the destination, with no new boot — the host
// ends empty, and both VMs report the new host.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Fleet } from '../../src/controllers/fleet.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { addControllers } from '../../src/controllers/setup.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { LibvirtConnection, type LibvirtConsole } from '../../src/hypervisors/libvirt/native/index.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Informer } from '../../src/runtime/informer.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { Manager } from '../../src/runtime/manager.js';
import { captureLogs } from '../harness/logs.js';
import { guestImage, READY_MARKER } from '../rig/guest.js';
import { Rig } from '../rig/rig.js';

const NAMESPACE = 'default';
const POOL = 'rig-maint';
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+)/g;
const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-maint-e2e-'));
const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
const stop = new AbortController();
const watchStop = new AbortController();
const logs = captureLogs('info');
let info: ControlPlaneInfo;
let rig: Rig;
let fleet: Fleet;
let running: Promise<void> | undefined;
let client: KubeClient;
let vms: Informer<VmObject>;
let pools: Informer<PoolObject>;
const waiters = new Set<() => void>();
const hostSpec = (i: number, extra: Record<string, unknown> = {}) => ({ name: `rig-${i}`, uri: rig.hosts[i]!.uri, ...extra });

beforeAll(async () => {
  info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  rig = await Rig.start({ hosts: 2, diskLeases: false });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfig);
  client = new KubeClient(kubeConfig);
  const cache = new Cache(client, logs.logger);
  vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
  pools = cache.informerFor<PoolObject>(HOST_POOL);
  for (const informer of [vms, pools]) informer.on(() => waiters.forEach((wake) => wake()));
  void cache.run(watchStop.signal);
  await cache.waitForSync();
  const manager = new Manager({ kubeConfig, logger: logs.logger });
  fleet = new Fleet();
  addControllers(manager, { fleet, logger: logs.logger, shutdownGraceMs: 3_000 });
  running = manager.run(stop.signal);
}, 180_000);

afterAll(async () => {
  for (const vm of vms?.list() ?? []) await client.delete(VIRTUAL_MACHINE, NAMESPACE, vm.metadata.name ?? '').catch(() => undefined);
  await until(() => vms.list().length === 0, 60_000, 'VMs deleted').catch(() => undefined);
  watchStop.abort();
  stop.abort();
  await running;
  await fleet?.close();
  await rig?.teardown();
  await plane.stop();
  rmSync(stateDir, { recursive: true, force: true });
}, 180_000);

function until(check: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      if (!check()) return;
      clearTimeout(timer);
      waiters.delete(done);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(done);
      reject(new Error(`${what}: not within ${ms} ms; VMs: ${JSON.stringify(vms.list().map((vm) => [vm.metadata.name, vm.status]))}`));
    }, ms);
    waiters.add(done);
    done();
  });
}

const vm = (name: string) => vms.list().find((each) => each.metadata.name === name);
const ready = (name: string) => {
  const current = vm(name);
  return current?.status?.phase === 'Running' && (current.status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready')?.status === 'True';
};

/** The guest's console output from now on. */
class ConsoleLog {
  text = '';
  private constructor(private readonly conn: LibvirtConnection, private readonly console: LibvirtConsole) {}
  static async open(uri: string, uuid: string): Promise<ConsoleLog> {
    const conn = await LibvirtConnection.open(uri);
    const console = await conn.domainOpenConsole(uuid, { force: true });
    const log = new ConsoleLog(conn, console);
    console.onData((data) => {
      log.text += data.toString('latin1');
    });
    return log;
  }
  beats(): number[] {
    return [...this.text.matchAll(HEARTBEAT)].map((match) => Number(match[1]));
  }
  async until(check: () => boolean, ms: number, what: string): Promise<void> {
    for (const deadline = Date.now() + ms; !check(); ) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms; console said: ${this.text.slice(-500)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  async close(): Promise<void> {
    await this.console.close().catch(() => undefined);
    await this.conn.close();
  }
}

describe('a host put in maintenance', () => {
  it('live-migrates its two guests away while their serial output goes on, and ends empty', async () => {
    const image = await guestImage();
    await client.create(HOST_POOL, { apiVersion: 'virtfleet.io/v1alpha1', kind: 'HostPool', metadata: { name: POOL }, spec: { hosts: [hostSpec(0)] } });
    for (const name of ['guest-a', 'guest-b']) {
      await client.create(VIRTUAL_MACHINE, {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'VirtualMachine',
        metadata: { name, namespace: NAMESPACE },
        spec: { hostPoolRef: { name: POOL }, hypervisor: 'kvm', memory: '128Mi', kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' } },
      } as unknown as VmObject);
    }
    await until(() => ready('guest-a') && ready('guest-b'), 120_000, 'both guests Ready on rig-0');
    // Both guests booted and counting, seen on rig-0's consoles.
    const before = await Promise.all(['guest-a', 'guest-b'].map((name) => ConsoleLog.open(rig.hosts[0]!.uri, vm(name)!.metadata.uid ?? '')));
    await Promise.all(before.map((log) => log.until(() => log.beats().length >= 2, 60_000, 'heartbeats on rig-0')));

    const started = Date.now();
    await client.patch(HOST_POOL, undefined, POOL, { spec: { hosts: [hostSpec(0, { maintenance: true }), hostSpec(1)] } });
    await until(() => ['guest-a', 'guest-b'].every((name) => vm(name)?.status?.host === 'rig-1' && ready(name)), 120_000, 'both guests on rig-1');
    const took = Date.now() - started;
    const lastOnSource = before.map((log) => Math.max(...log.beats()));
    await Promise.all(before.map((log) => log.close()));

    // The same guests go on counting on rig-1, with no new boot in between.
    for (const [i, name] of ['guest-a', 'guest-b'].entries()) {
      const after = await ConsoleLog.open(rig.hosts[1]!.uri, vm(name)!.metadata.uid ?? '');
      try {
        await after.until(() => after.beats().length >= 2, 30_000, `heartbeats of ${name} on rig-1`);
        const beats = after.beats();
        expect(beats[0]!).toBeGreaterThan(lastOnSource[i]!);
        expect(beats[1]).toBe(beats[0]! + 1);
        expect(after.text).not.toMatch(READY_MARKER);
      } finally {
        await after.close();
      }
      const current = vm(name)!;
      expect((current.status?.conditions as Condition[]).find((c) => c.type === 'Migrating')).toMatchObject({ status: 'False', reason: 'Migrated' });
      expect(current.status?.restarts ?? 0).toBe(0);
    }
    // The host in maintenance is empty, and says so.
    const conn = await LibvirtConnection.open(rig.hosts[0]!.uri);
    try {
      expect(await conn.listAllDomains()).toEqual([]);
    } finally {
      await conn.close();
    }
    await until(() => (pools.get(POOL)?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Maintenance')?.reason === 'Drained', 30_000, 'pool Drained');
    expect((pools.get(POOL)?.status?.conditions as Condition[]).find((c) => c.type === 'Maintenance')?.message).toBe('hosts in maintenance: rig-0: empty');
    process.stdout.write(`maintenance drain on the rig: 2 guests migrated off rig-0 in ${took} ms\n`);
  }, 400_000);
});
