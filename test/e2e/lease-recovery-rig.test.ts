// Recovery by lease on real libvirtd hosts (test/rig; issue 18, Done 3): a HostPool with
// spec.leases (every rig host runs virtlockd, lockspace on the rig's shared directory, disks
// leased too by auto_disk_leases), shared storage for the disks, and NO fencing command. Two
// VMs, one with a qcow2 disk on the shared pool and one without, run on rig-0; rig-1 is free.
//
// - rig-0 cut off (its QEMUs alive, their leases held): the controller tries each VM on rig-1,
//   and rig-1 refuses the start (virtlockd "resource busy", or QEMU's image lock on the disk).
//   Nothing runs on rig-1; each VM says RecoveryBlocked with what would free it, and a LeaseHeld
//   Event; it stays so through a second try. Link back: the VMs run on rig-0 as before (the
//   same QEMUs), their stopped definitions on rig-1 removed.
// - rig-0 dead (every process in its namespace SIGKILLed: libvirtd, virtlockd, the QEMUs): the
//   VMs start on rig-1 because its virtlockd grants their leases, with the evidence in a
//   LeaseAcquired Event; the lockspace's locks are then held by rig-1's virtlockd only.
//
// Throughout, an observer asks each host's libvirtd over its local socket every 200 ms which
// copies run: never two. Needs root (the rig). Run alone:
//   node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
//     --selectProjects e2e --testPathPatterns lease-recovery-rig
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { CORE_EVENT } from '../../src/runtime/events.js';
import type { KubeObject } from '../../src/runtime/kube-client.js';
import { guestImage } from '../rig/guest.js';
import type { RigHost } from '../rig/rig.js';
import { RunningCopiesChecker } from '../rig/running-copies.js';
import { condition, guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-leases';
const VMS = ['lr-disk', 'lr-plain'];
const OLD = 'rig-0';
const NEW = 'rig-1';

const stack = new RigController({
  hosts: 2,
  tag: 'lease-recovery',
  leases: true,
  detail: () => describeVms(),
});
const vm = (name: string) => stack.vm(name);
const uids = () =>
  new Map(VMS.flatMap((name) => (vm(name)?.metadata.uid ? [[vm(name)!.metadata.uid!, name] as [string, string]] : [])));
let checker: RunningCopiesChecker | undefined;
const timeline: string[] = [];
let t0 = Date.now();
const mark = (what: string) => timeline.push(`+${((Date.now() - t0) / 1000).toFixed(2)} s ${what}`);

function describeVms(): string {
  return VMS.map((name) => {
    const v = vm(name);
    const ready = condition(v, 'Ready');
    return `${name}: ${v?.status?.phase} on ${v?.status?.host} restarts ${v?.status?.restarts ?? 0}, Ready ${ready?.status}/${ready?.reason} (${ready?.message})`;
  }).join('\n');
}

/** The VM's domains on a reachable host (UUIDs of our VMs only). */
async function domainsOn(host: RigHost): Promise<string[]> {
  const ours = new Set(uids().keys());
  const conn = await LibvirtConnection.open(host.uri);
  try {
    return (await conn.listAllDomains()).filter((d) => ours.has(d.uuid)).map((d) => d.uuid);
  } finally {
    await conn.close();
  }
}

async function events(name: string, reason: string): Promise<string[]> {
  const list = await stack.client.list<KubeObject & { reason?: string; message?: string }>(CORE_EVENT, {
    namespace: NAMESPACE,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.filter((event) => event.reason === reason).map((event) => event.message ?? '');
}

/**
 * Who holds the fcntl locks on the lockspace's files (/proc/locks: the owner's pid and the
 * file's inode): lease file name → pids. virtlockd takes POSIX write locks, one per lease.
 */
function lockHolders(): Map<string, number[]> {
  const dir = stack.rig.lockspaceDir;
  const byInode = new Map<number, string>();
  for (const name of readdirSync(dir)) byInode.set(statSync(join(dir, name)).ino, name);
  const holders = new Map<string, number[]>();
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 4242 00:2b:131090 0 EOF"
    const match = /^\d+:\s+POSIX\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (!match) continue;
    const name = byInode.get(Number(match[2]));
    if (name) holders.set(name, [...(holders.get(name) ?? []), Number(match[1])]);
  }
  return holders;
}

/** The lease files locked, each by a process of `host`'s namespace only. */
function leasesHeldBy(host: RigHost): string[] {
  const pids = new Set(host.pids());
  return [...lockHolders()].filter(([, holders]) => holders.every((pid) => pids.has(pid))).map(([name]) => name);
}

const blocked = (name: string) => {
  const ready = condition(vm(name), 'Ready');
  return vm(name)?.status?.phase === 'Unknown' && ready?.status === 'Unknown' && ready.reason === 'RecoveryBlocked';
};

beforeAll(async () => {
  await stack.start();
  const image = await guestImage();
  const spec = (hosts: number) => ({
    hosts: stack.poolHosts().slice(0, hosts),
    failureDetection: { heartbeatPeriodSeconds: 1, failureThreshold: 3 },
    storage: { pool: 'vf-shared', path: join(stack.rig.sharedDir, 'disks'), shared: true },
    leases: { lockspace: stack.rig.lockspaceDir },
  });
  // Both VMs on rig-0 first; rig-1 joins once they run there.
  await stack.client.create(HOST_POOL, hostPool(POOL, spec(1)));
  await stack.client.create(
    VIRTUAL_MACHINE,
    guestVm(VMS[0]!, POOL, image, { disks: [{ name: 'data', size: '32Mi', source: { blank: {} } }] }),
  );
  await stack.client.create(VIRTUAL_MACHINE, guestVm(VMS[1]!, POOL, image));
  await stack.until(
    () => VMS.every((name) => isRunning(vm(name)) && vm(name)?.status?.host === OLD),
    120_000,
    `both Running on ${OLD}`,
  );
  await stack.client.patch(HOST_POOL, undefined, POOL, { spec: { hosts: stack.poolHosts() } });
  await stack.until(() => stack.pool(POOL)?.status?.readyHosts === 2, 60_000, 'both hosts ready');
  checker = new RunningCopiesChecker(stack.rig, uids);
  await checker.start();
  t0 = Date.now();
}, 240_000);

afterAll(async () => {
  await checker?.stop();
  process.stdout.write(
    `lease recovery timeline (${checker?.sampling() ?? 'no samples'}):\n  ${timeline.join('\n  ')}\n`,
  );
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

describe('a pool with leases on shared storage and no fencing command', () => {
  it(`${OLD} cut off, its QEMUs alive: ${NEW} refuses the starts, nothing restarts; back on ${OLD} after the heal`, async () => {
    const old = stack.rigHost(OLD);
    const pids = new Map(VMS.map((name) => [name, old.qemuPid(vm(name)!.status!.domainName!)]));
    // Each VM's lease, and the disk's, are held by rig-0's virtlockd.
    const held = leasesHeldBy(old);
    for (const name of VMS) expect(held).toContain(`virtfleet-${vm(name)!.metadata.uid}`);
    expect(held.length).toBeGreaterThanOrEqual(VMS.length + 1);

    await old.cutLink('link');
    mark(`${OLD} cut off`);
    await stack.until(
      () => VMS.every((name) => blocked(name) && /next try in/.test(condition(vm(name), 'Ready')?.message ?? '')),
      60_000,
      `both RecoveryBlocked after a refused start on ${NEW}`,
    );
    mark(`both RecoveryBlocked: ${condition(vm(VMS[0]!), 'Ready')?.message}`);
    for (const name of VMS) {
      const message = condition(vm(name), 'Ready')?.message ?? '';
      expect(message).toMatch(
        new RegExp(
          `^the VM is not started on ${NEW}: the start was refused because its leases or disks are held \\(.+\\), so the old copy on ${OLD} is alive and holds them`,
        ),
      );
      // What would free it.
      expect(message).toContain(
        `It starts on ${NEW} once they are free: when that QEMU exits or its host is powered off (a fencing command, HostPool ${POOL} spec.hosts[${OLD}].fencing, would do it)`,
      );
      expect(vm(name)?.status?.restarts ?? 0).toBe(0);
      expect(await events(name, 'LeaseHeld')).not.toEqual([]);
    }
    // The refusal names what held: virtlockd's lease, or QEMU's lock of the disk open on rig-0.
    expect(condition(vm('lr-plain'), 'Ready')?.message).toMatch(/resource busy|is locked/);
    expect(condition(vm('lr-disk'), 'Ready')?.message).toMatch(/resource busy|is locked|Failed to get "write" lock/);

    // It stays so through a second try on rig-1 (10 s after the first).
    await stack.until(
      () => VMS.every((name) => /Tried [2-9] times/.test(condition(vm(name), 'Ready')?.message ?? '')),
      40_000,
      'a second refused try',
    );
    mark('a second try refused for both');
    await checker!.sample();
    for (const name of VMS) {
      const uid = vm(name)!.metadata.uid!;
      expect(checker!.runningOn(uid)).toEqual(['host0']);
      expect(old.qemuPid(vm(name)!.status!.domainName!)).toBe(pids.get(name));
    }
    expect(leasesHeldBy(old)).toEqual(expect.arrayContaining(held));

    await old.restoreLink('link');
    mark(`${OLD} link restored`);
    await stack.until(
      () => VMS.every((name) => isRunning(vm(name)) && vm(name)?.status?.host === OLD),
      90_000,
      `both Running on ${OLD} again`,
    );
    mark(`both Running on ${OLD} again`);
    for (const name of VMS) {
      expect(old.qemuPid(vm(name)!.status!.domainName!)).toBe(pids.get(name));
      expect(vm(name)?.status?.restarts ?? 0).toBe(0);
    }
    // The definitions the refused starts left on rig-1 go once the VMs are seen running on rig-0.
    for (const deadline = Date.now() + 30_000; (await domainsOn(stack.rigHost(NEW))).length > 0;) {
      if (Date.now() > deadline) throw new Error(`definitions left on ${NEW}: ${describeVms()}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(checker!.violations).toEqual([]);
  }, 180_000);

  it(`${OLD} dead (libvirtd, virtlockd and QEMUs killed): the VMs start on ${NEW} once its virtlockd grants their leases, with the evidence`, async () => {
    const old = stack.rigHost(OLD);
    const fresh = stack.rigHost(NEW);
    const before = new Map(VMS.map((name) => [name, vm(name)?.status?.restarts ?? 0]));
    const killedAt = Date.now();
    for (const pid of old.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    mark(`${OLD}: every process SIGKILLed`);
    await stack.until(
      () =>
        VMS.every(
          (name) =>
            isRunning(vm(name)) &&
            vm(name)?.status?.host === NEW &&
            vm(name)?.status?.restarts === before.get(name)! + 1,
        ),
      90_000,
      `both Running on ${NEW}`,
    );
    const recoveredAfter = Date.now() - killedAt;
    mark(`both Running on ${NEW} (${recoveredAfter} ms after the kill)`);
    for (const name of VMS) {
      const evidence = await events(name, 'LeaseAcquired');
      expect(evidence).toHaveLength(1);
      expect(evidence[0]).toMatch(
        new RegExp(
          `^started on ${NEW}: its lock manager granted the VM's lease virtfleet-${vm(name)!.metadata.uid}${name === 'lr-disk' ? " and its disk's lease" : ''} in lockspace ${stack.rig.lockspaceDir.replace(/[.+]/g, '\\$&')}`,
        ),
      );
      expect(evidence[0]).toContain(`no process there holds them any more: the old copy is gone`);
      expect(condition(vm(name), 'Scheduled')?.message).toMatch(new RegExp(`moved from failed host ${OLD}`));
    }
    mark(`evidence: ${(await events('lr-disk', 'LeaseAcquired'))[0]}`);
    // The leases (the disk's included) are now rig-1's virtlockd's; rig-0 has no process left.
    expect(old.pids()).toEqual([]);
    const heldNow = leasesHeldBy(fresh);
    for (const name of VMS) expect(heldNow).toContain(`virtfleet-${vm(name)!.metadata.uid}`);
    expect(heldNow.length).toBeGreaterThanOrEqual(VMS.length + 1);
    await checker!.sample();
    for (const name of VMS) expect(checker!.runningOn(vm(name)!.metadata.uid!)).toEqual(['host1']);
    expect(checker!.violations).toEqual([]);
  }, 180_000);
});
