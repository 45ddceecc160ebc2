// Faults under load (issue 11): the kube-apiserver is down for 60 s while a guest crashes (its
// QEMU SIGKILLed) on a real libvirtd host (test/rig). The controller runs as its own process and
// works from its cache: the VM runs again within the outage, nothing is destroyed, and once the
// API server is back the status converges and the restart's Event, recorded while the API was
// away, is written (src/runtime/events.ts keeps unsent Events and retries with back-off).
//
// Watched from outside the API: each host's libvirtd over its local socket (the copy checker,
// test/rig/running-copies.ts, and the lifecycle events of the VM's domain). Prints a timeline.
//
// Needs root (the rig). Run alone:
//   node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
//     --selectProjects e2e --testPathPatterns faults-under-load-api-outage
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import type { ControlPlane } from '../../src/devstack/controlplane.js';
import { LibvirtConnection, type LifecycleEvent } from '../../src/hypervisors/libvirt/native/index.js';
import { CORE_EVENT } from '../../src/runtime/events.js';
import type { KubeObject } from '../../src/runtime/kube-client.js';
import { readyMarker } from '../rig/console.js';
import { guestImage } from '../rig/guest.js';
import { RunningCopiesChecker } from '../rig/running-copies.js';
import { lifecycleEvent } from '../rig/waiters.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-outage';
const VM = 'steady';
const OUTAGE_MS = 60_000;

const stack: RigController = new RigController({
  hosts: 2,
  tag: 'outage',
  controllerProcess: true,
  detail: () => `VM: ${JSON.stringify(stack.vm(VM)?.status)}`,
});
// The harness keeps its control plane to itself; this test stops and starts its API server.
const plane = () => Reflect.get(stack, 'plane') as ControlPlane;
let checker: RunningCopiesChecker | undefined;
const vm = () => stack.vm(VM);
const uid = () => vm()?.metadata.uid ?? '';
const timeline: string[] = [];
let t0 = Date.now();
const mark = (what: string) => timeline.push(`+${((Date.now() - t0) / 1000).toFixed(2)} s ${what}`);

/** Every host's libvirtd over its local socket: what no API outage touches. */
function localConnection(host: number): Promise<LibvirtConnection> {
  return LibvirtConnection.open(`qemu+unix:///system?socket=${join(stack.rig.hosts[host]!.runDir, 'libvirt-sock')}`);
}

/** The domains of every host: "host0 UUID state/reason", sorted. */
async function domainsEverywhere(): Promise<string[]> {
  const found: string[] = [];
  for (const [i] of stack.rig.hosts.entries()) {
    const conn = await localConnection(i);
    try {
      for (const d of await conn.listAllDomains()) found.push(`host${i} ${d.uuid}`);
    } finally {
      await conn.close();
    }
  }
  return found.sort();
}

async function restartedEvents(): Promise<Array<KubeObject & { count?: number; firstTimestamp?: string }>> {
  const list = await stack.client.list<KubeObject & { reason?: string; count?: number; firstTimestamp?: string }>(
    CORE_EVENT,
    { namespace: NAMESPACE, fieldSelector: `involvedObject.name=${VM}` },
  );
  return list.items.filter((event) => event.reason === 'Restarted');
}

beforeAll(async () => {
  await stack.start();
  const image = await guestImage();
  await stack.client.create(HOST_POOL, hostPool(POOL, { hosts: stack.poolHosts() }));
  await stack.client.create(VIRTUAL_MACHINE, guestVm(VM, POOL, image));
  await stack.until(() => isRunning(vm()), 120_000, 'the VM Ready');
  checker = new RunningCopiesChecker(stack.rig, () => new Map([[uid(), VM]]));
  await checker.start();
}, 240_000);

afterAll(async () => {
  await checker?.stop();
  process.stdout.write(
    `faults under load, API outage timeline (${checker?.sampling() ?? 'no samples'}):\n  ${timeline.join('\n  ')}\n`,
  );
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

describe('the kube-apiserver down for 60 s while a guest crashes', () => {
  it('restarts the VM from the cache within the outage, destroys nothing, converges after, and writes the restart Event once the API is back', async () => {
    const host = Number(vm()!.status!.host!.replace('rig-', ''));
    const rigHost = stack.rig.hosts[host]!;
    const domainName = vm()!.status!.domainName!;
    const before = await domainsEverywhere();
    expect(before).toEqual([`host${host} ${uid()}`]);
    expect(await restartedEvents()).toEqual([]);
    const conn = await localConnection(host);
    const lifecycle: LifecycleEvent[] = [];
    const unsubscribe = conn.onDomainEvent((event) => {
      if (event.type === 'lifecycle' && event.domain.uuid === uid()) lifecycle.push(event);
    });
    try {
      t0 = Date.now();
      await plane().killApiServer();
      const outageStart = Date.now();
      mark('kube-apiserver killed (SIGKILL); etcd and the controller keep running');
      // The crash comes a few seconds into the outage, once the controller's requests fail.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const firstPid = rigHost.qemuPid(domainName);
      const stopped = lifecycleEvent(conn, uid(), 'stopped', 30_000);
      const started = lifecycleEvent(conn, uid(), 'started', 30_000);
      const killedAt = Date.now();
      process.kill(firstPid, 'SIGKILL');
      mark(`guest's QEMU (pid ${firstPid}) on host${host} SIGKILLed`);
      const stop = await stopped;
      mark(`libvirt: stopped/${String(stop.detail)} after ${Date.now() - killedAt} ms`);
      await started;
      mark(`libvirt: started again after ${Date.now() - killedAt} ms (the controller, from its cache)`);
      const marker = await readyMarker(conn, uid(), 45_000);
      mark(`guest ready again after ${Date.now() - killedAt} ms (${marker})`);
      const secondPid = rigHost.qemuPid(domainName);
      expect(secondPid).not.toBe(firstPid);
      // Still within the outage: the API server is dead until restarted below.
      await checker!.sample();
      expect(checker!.runningOn(uid())).toEqual([`host${host}`]);
      const left = OUTAGE_MS - (Date.now() - outageStart);
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
      await checker!.sample();
      expect(checker!.runningOn(uid())).toEqual([`host${host}`]);
      mark(`outage over (${((Date.now() - outageStart) / 1000).toFixed(1)} s): restarting the kube-apiserver`);
      await plane().restartApiServer();
      const outageEnd = Date.now();
      mark('kube-apiserver ready again');

      await stack.until(
        () => isRunning(vm()) && vm()?.status?.restarts === 1 && vm()?.status?.host === `rig-${host}`,
        120_000,
        'the status converged: Running, Ready, one restart, same host',
      );
      mark('status converged: Running, Ready, restarts 1, same host');
      let events = await restartedEvents();
      for (const deadline = Date.now() + 60_000; events.length === 0 && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        events = await restartedEvents();
      }
      mark(`Restarted Event in the API: ${events.map((e) => `${e.firstTimestamp} count ${e.count}`).join(', ')}`);
      expect(events).toHaveLength(1);
      expect(events[0]!.count).toBe(1);
      // Recorded when it happened (within the outage), written after.
      const at = Date.parse(events[0]!.firstTimestamp ?? '');
      expect(at).toBeGreaterThanOrEqual(Math.floor(killedAt / 1000) * 1000);
      expect(at).toBeLessThanOrEqual(outageEnd);
      const log = readFileSync(stack.controllerLog, 'utf8');
      expect(log).toMatch(/could not write an event yet; keeping it and trying again/);
      expect(log).toMatch(/writing events again: the API server answers/);

      // Nothing destroyed: the same domain on the same host, never undefined, one crash, one start.
      expect(await domainsEverywhere()).toEqual(before);
      expect(lifecycle.map((e) => e.event).filter((e) => e === 'undefined' || e === 'stopped')).toEqual(['stopped']);
      expect(lifecycle.filter((e) => e.event === 'started')).toHaveLength(1);
      expect(rigHost.qemuPid(domainName)).toBe(secondPid);
      expect(checker!.violations).toEqual([]);
    } finally {
      unsubscribe();
      await conn.close();
    }
  }, 360_000);
});
