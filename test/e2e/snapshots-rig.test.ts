// Issue 16 on a real libvirtd host with QEMU (test/rig), the rig's tiny guest counting heartbeats
// on its console ("VIRTFLEET-GUEST-HEARTBEAT n=1, 2, 3…", one a second, from boot):
// - done-means 3: `vm suspend` leaves no QEMU process for the VM; `vm resume` brings the guest
//   back and its counter continues (a boot would start again at n=1 after the ready marker);
// - done-means 1: a snapshot with memory, restored: the counter goes back to the snapshot's value
//   and counts on from there, and a marker the guest wrote to its disk after the snapshot is gone;
// - done-means 2: a group of three VMs on the two hosts, each sending numbered messages to the two
//   others over a LAN between the hosts (snapshot-messages.ts), captured as one cut and restored:
//   for every pair, what the receiver had received as restored is at most what the sender had
//   sent as restored (read from the consoles as the restored guests start), and each guest's
//   counter goes back;
// - done-means 4: a snapshot schedule every 10 s keeping 2 leaves exactly 2, the oldest gone from
//   the host. The VM has a blank qcow2 disk: QEMU keeps internal snapshots in qcow2 disks and
//   refuses one of a VM without any.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runRestore, runSnapshot } from '../../src/cli/snapshot.js';
import { runAction } from '../../src/cli/vm.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import {
  VM_SNAPSHOT,
  VM_RESTORE,
  VM_SNAPSHOT_SCHEDULE,
  type RestoreObject,
  type ScheduleObject,
  type SnapshotObject,
} from '../../src/controllers/snapshot/types.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { volumeName } from '../../src/controllers/vm-storage.js';
import { domainName } from '../../src/hypervisors/domain-name.js';
import { guestImage } from '../rig/guest.js';
import {
  ConsoleWatch,
  firstLines,
  guestLan,
  HAVE_COMMAND,
  LAN_BRIDGE,
  pairChecks,
  type PairCheck,
} from './snapshot-messages.js';
import { qemuProcessesByUuid } from '../rig/qemu-copies.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-snap';
const VM = 'counter';
const GROUP = ['g-1', 'g-2', 'g-3'];
/** Each group VM's address on the guests' LAN (snapshot-messages.ts). */
const LAN = new Map(GROUP.map((name, i) => [name, `10.77.0.${i + 1}`]));
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+) uptime=([0-9.]+)\r?\n/;

const stack: RigController = new RigController({
  hosts: 2,
  tag: 'snap',
  detail: () =>
    JSON.stringify(stack.pool(POOL)?.status) +
    JSON.stringify(
      ['counter', 'g-1', 'g-2', 'g-3'].map((name) => ({
        name,
        host: stack.vm(name)?.status?.host,
        conditions: stack.vm(name)?.status?.conditions,
      })),
    ),
});
const uid = () => stack.vm(VM)?.metadata.uid ?? '';
const kubeconfig = () => stack.info.kubeconfig;

beforeAll(async () => {
  await stack.start();
  const image = await guestImage();
  await stack.client.create(
    HOST_POOL,
    hostPool(POOL, {
      hosts: stack.poolHosts(),
      // The rig's hosts share the directory: shared storage, so that a VM can live-migrate
      // (the restore-while-migrating case); assumeCoherent since libvirt does not know it as such.
      storage: {
        pool: `snap-${process.pid}`,
        path: join(stack.rig.sharedDir, `snap-${process.pid}`),
        shared: true,
        assumeCoherent: true,
      },
    }),
  );
  await stack.until(() => stack.pool(POOL)?.status?.readyHosts === 2, 120_000, 'both hosts ready');
  await stack.client.create(
    VIRTUAL_MACHINE,
    guestVm(VM, POOL, image, { disks: [{ name: 'scratch', size: '16Mi', source: { blank: {} } }] }),
  );
  await stack.until(() => isRunning(stack.vm(VM)), 120_000, 'the guest to run');
}, 300_000);

afterAll(async () => {
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

/** The next whole heartbeat line on the console of `vm` after it is opened: its n and uptime. */
async function nextHeartbeat(vm = VM, timeoutMs = 30_000): Promise<{ n: number; uptime: number }> {
  const host = stack.rigHost(stack.vm(vm)!.status!.host!);
  const conn = await LibvirtConnection.open(host.uri);
  try {
    const console = await conn.domainOpenConsole(stack.vm(vm)?.metadata.uid ?? '', { force: true });
    let output = '';
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no heartbeat within ${timeoutMs} ms; console said:\n${output.slice(-1000)}`)),
          timeoutMs,
        );
        console.onData((data) => {
          output += data.toString('latin1');
          // Only a line that began after the console was opened: the first may be cut.
          const start = output.indexOf('\n');
          const match = start < 0 ? null : HEARTBEAT.exec(output.slice(start + 1));
          if (match) {
            clearTimeout(timer);
            resolve({ n: Number(match[1]), uptime: Number(match[2]) });
          }
        });
      });
    } finally {
      await console.close();
    }
  } finally {
    await conn.close();
  }
}

/** A process's resident memory in KiB (VmRSS), 0 when it is gone or has none (a kernel thread). */
function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const memAvailableKiB = () => Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);

const flags = () => ({ namespace: NAMESPACE, kubeconfig: kubeconfig(), wait: true, timeout: '120' });

/**
 * Types one line into the guest's console shell (build-guest.sh) and resolves with the first
 * match of `answer` in what the console prints after it (the tty echoes the line itself, so the
 * answer's pattern must not match the command as typed).
 */
async function consoleRun(vm: string, command: string, answer: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  const host = stack.rigHost(stack.vm(vm)!.status!.host!);
  const conn = await LibvirtConnection.open(host.uri);
  try {
    const console = await conn.domainOpenConsole(stack.vm(vm)?.metadata.uid ?? '', { force: true });
    let output = '';
    try {
      const found = new Promise<RegExpMatchArray>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `${JSON.stringify(command)}: no ${answer} within ${timeoutMs} ms; console said:\n${output.slice(-1000)}`,
              ),
            ),
          timeoutMs,
        );
        console.onData((data) => {
          output += data.toString('latin1');
          const match = answer.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match);
          }
        });
      });
      await console.write(Buffer.from(`${command}\n`, 'latin1'));
      return await found;
    } finally {
      await console.close();
    }
  } finally {
    await conn.close();
  }
}

/**
 * Pauses `vms` (a hold), runs `restore`, opens each one's console, unpauses them, and reads each
 * pair's counters as restored from the first lines the guests print (snapshot-messages.ts).
 * Held paused through the restore (a pause hold keeps a memory-reverted VM paused), the consoles
 * are open before any restored guest runs an instruction.
 */
async function restoredPairs(
  vms: string[],
  restore: () => Promise<void>,
  only?: Array<[from: string, to: string]>,
): Promise<PairCheck[]> {
  for (const name of vms) await runAction('pause', name, flags(), () => undefined);
  await restore();
  const conns = await Promise.all(
    vms.map((name) => LibvirtConnection.open(stack.rigHost(stack.vm(name)!.status!.host!).uri)),
  );
  const watches: ConsoleWatch[] = [];
  let checks: PairCheck[] | undefined;
  try {
    for (const [i, name] of vms.entries())
      watches.push(await ConsoleWatch.open(conns[i]!, stack.vm(name)!.metadata.uid!));
    for (const name of vms) await runAction('unpause', name, flags(), () => undefined);
    // What each has received as restored, for the pairs whose next message is slow to come
    // (the inconsistent cut below stalls TCP).
    for (const watch of watches) await watch.type(HAVE_COMMAND);
    const lan = new Map(vms.map((name) => [name, LAN.get(name)!]));
    for (const deadline = Date.now() + 60_000; ;) {
      checks = pairChecks(lan, new Map(vms.map((name, i) => [name, firstLines(watches[i]!.text)])), only);
      if (checks || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await Promise.all(watches.map((watch) => watch.close()));
    await Promise.all(conns.map((conn) => conn.close()));
  }
  if (!checks)
    throw new Error(
      `not every pair's first sent and received line within 60 s after the restore:\n${vms.map((name, i) => `${name}: ${watches[i]?.text.slice(-1500)}`).join('\n')}`,
    );
  return checks;
}

/** How many copies of the marker sector 2048 of the guest's disk holds (0 or 1). */
async function markers(vm = VM): Promise<number> {
  const match = await consoleRun(
    vm,
    'vf-disks >/dev/null 2>&1; echo "MARKS=$(dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | grep -c VFMARK)."',
    /MARKS=(\d+)\./,
  );
  return Number(match[1]);
}

describe('suspend and resume on QEMU (issue 16, done-means 3)', () => {
  it('suspend ends the QEMU process; resume continues the counter where it was', async () => {
    const before = await nextHeartbeat();
    expect(qemuProcessesByUuid().get(uid())?.length).toBe(1);
    const qemuPid = qemuProcessesByUuid().get(uid())![0]!;
    // The host's memory: every process in its namespace (libvirtd, virtlockd, the QEMUs).
    const host = stack.rigHost(stack.vm(VM)!.status!.host!);
    const hostRss = () => host.pids().reduce((sum, pid) => sum + rssKiB(pid), 0);
    const qemuRss = rssKiB(qemuPid);
    const [hostBefore, availableBefore] = [hostRss(), memAvailableKiB()];
    await runAction('suspend', VM, flags(), () => undefined);
    await stack.until(() => stack.vm(VM)?.status?.phase === 'Suspended', 60_000, 'Suspended');
    expect(qemuProcessesByUuid().get(uid())).toBeUndefined();
    const [hostAfter, availableAfter] = [hostRss(), memAvailableKiB()];
    process.stdout.write(
      `suspend: the QEMU held ${qemuRss} KiB resident; the host's processes ${hostBefore} -> ${hostAfter} KiB; ` +
        `MemAvailable ${availableBefore} -> ${availableAfter} KiB (the whole machine, shared with other work)\n`,
    );
    // The memory came back: the host's processes hold what the QEMU held less, but for what
    // libvirtd's own use moves by (16 MiB). MemAvailable is printed, not checked: the machine is
    // shared, and the saved image's pages sit in the page cache.
    expect(qemuRss).toBeGreaterThan(32 * 1024);
    expect(hostBefore - hostAfter).toBeGreaterThanOrEqual(qemuRss - 16 * 1024);

    await runAction('resume', VM, flags(), () => undefined);
    await stack.until(() => isRunning(stack.vm(VM)), 60_000, 'Running again');
    const after = await nextHeartbeat();
    // The same guest: it counts on (a fresh boot would count from 1 with a small uptime).
    expect(after.n).toBeGreaterThan(before.n);
    expect(after.uptime).toBeGreaterThan(before.uptime);
  }, 300_000);
});

describe('snapshot with memory and restore on QEMU (issue 16, done-means 1)', () => {
  it('brings the counter back to the snapshot and counts on from there', async () => {
    await runSnapshot(VM, { ...flags(), memory: true, name: 'counter-mem' }, () => undefined);
    const atSnapshot = await nextHeartbeat();
    // After the snapshot the guest writes a marker to its disk (done-means 1, the marker part).
    await consoleRun(
      VM,
      'vf-disks >/dev/null 2>&1; printf "VFMARK\\n" | dd of=/dev/vda bs=512 seek=2048 conv=notrunc,fsync 2>/dev/null; echo "WROTE-$?."',
      /WROTE-0\./,
    );
    expect(await markers()).toBe(1);
    // Let it count well past the snapshot.
    let later = await nextHeartbeat();
    while (later.n < atSnapshot.n + 5) later = await nextHeartbeat();

    await runRestore(VM, { ...flags(), snapshot: 'counter-mem', all: false }, () => undefined);
    await stack.until(() => isRunning(stack.vm(VM)), 60_000, 'Running after the restore');
    const restored = await nextHeartbeat();
    // Back to about where the snapshot was taken (the first heartbeat read after it came a few
    // seconds later at most), not where it had got to, and not a fresh boot (which counts from 1).
    expect(restored.n).toBeLessThan(later.n);
    expect(restored.n).toBeGreaterThanOrEqual(atSnapshot.n - 5);
    expect(restored.uptime).toBeLessThan(later.uptime);
    // The disk is back too: the marker written after the snapshot is gone.
    expect(await markers()).toBe(0);
  }, 300_000);
});

describe('a group of three VMs on two QEMU hosts exchanging messages, captured as one cut and restored (issue 16, done-means 2)', () => {
  it("for every pair, what the receiver had received as restored was sent before the sender's capture; counters go back", async () => {
    const image = await guestImage();
    guestLan(stack.rig.hosts);
    for (const [i, name] of GROUP.entries())
      await stack.client.create(VIRTUAL_MACHINE, {
        ...guestVm(name, POOL, image, {
          disks: [{ name: 'scratch', size: '16Mi', source: { blank: {} } }],
          networks: [{ name: 'lan', bridge: LAN_BRIDGE }],
          // g-1 and g-2 on different hosts; g-3 wherever it fits.
          ...(i < 2 ? { placement: { antiAffinityGroup: 'snap-group' } } : {}),
        }),
        metadata: { name, namespace: NAMESPACE, labels: { group: 'snap' } },
      });
    for (const name of GROUP) await stack.until(() => isRunning(stack.vm(name)), 120_000, `${name} running`);
    expect(new Set(GROUP.map((name) => stack.vm(name)?.status?.host)).size).toBe(2);

    // Booted (its console shell reads what is typed once the heartbeats run) …
    await Promise.all(GROUP.map((name) => nextHeartbeat(name, 60_000)));
    // … its address on the LAN, then a message every 0.2 s to each of the two others.
    for (const [name, address] of LAN)
      expect(
        (await consoleRun(name, `vf-net ${address}/24 2>&1; echo "NET=$?."`, /(?:[^\n]*\n){0,4}NET=\d+\./))[0],
      ).toMatch(/NET=0\.$/);
    for (const [name, address] of LAN) {
      const peers = [...LAN.values()].filter((peer) => peer !== address).join(' ');
      await consoleRun(name, `vf-messages ${name} ${peers}; echo "MSG=$?."`, /MSG=(\d+)\./);
    }
    // Flowing both ways on every pair before the cut (else the check below would say nothing).
    await Promise.all(
      GROUP.map((name) =>
        consoleRun(
          name,
          '',
          new RegExp(
            GROUP.filter((n) => n !== name)
              .map((n) => `(?=[\\s\\S]*VFM recv from=${n} n=\\d+ prev=[1-9])`)
              .join(''),
          ),
          60_000,
        ),
      ),
    );

    await stack.client.create(VM_SNAPSHOT, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineSnapshot',
      metadata: { name: 'group-mem', namespace: NAMESPACE },
      spec: { source: { selector: { matchLabels: { group: 'snap' } } }, memory: true },
    } as SnapshotObject);
    let snapshot: SnapshotObject | undefined;
    for (const deadline = Date.now() + 120_000; ;) {
      snapshot = await stack.client.get<SnapshotObject>(VM_SNAPSHOT, NAMESPACE, 'group-mem');
      if (snapshot.status?.phase === 'Ready' || snapshot.status?.phase === 'Failed' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(snapshot.status?.phase).toBe('Ready');
    expect(snapshot.status?.vms?.map((entry) => `${entry.vm}:${entry.consistency}`)).toEqual(
      GROUP.map((name) => `${name}:Memory`),
    );
    expect(snapshot.status?.cut?.logicalClock).toBe(1);
    process.stdout.write(`group of 3 on 2 QEMU hosts: pause window ${snapshot.status?.cut?.pauseWindowMs} ms\n`);
    const atSnapshot = await Promise.all(GROUP.map((name) => nextHeartbeat(name)));
    let later = await Promise.all(GROUP.map((name) => nextHeartbeat(name)));
    while (later.some((beat, i) => beat.n < atSnapshot[i]!.n + 5))
      later = await Promise.all(GROUP.map((name) => nextHeartbeat(name)));

    const checks = await restoredPairs(GROUP, async () => {
      await runRestore('g-1', { ...flags(), snapshot: 'group-mem', all: true }, () => undefined);
    });
    for (const check of checks)
      process.stdout.write(
        `${check.from} -> ${check.to}: sent up to ${check.sentUpTo}, received up to ${check.receivedUpTo} (as restored)\n`,
      );
    for (const check of checks) {
      // The consistent cut: nothing received that its sender had not sent as restored …
      expect(check).toEqual({ ...check, receivedUpTo: Math.min(check.receivedUpTo, check.sentUpTo) });
      // … and messages had been flowing on the pair when the cut was taken.
      expect(check.receivedUpTo).toBeGreaterThan(0);
    }

    const restored = await Promise.all(GROUP.map((name) => nextHeartbeat(name)));
    for (const [i, beat] of restored.entries()) {
      expect(beat.n).toBeLessThan(later[i]!.n);
      expect(beat.n).toBeGreaterThanOrEqual(atSnapshot[i]!.n - 5);
    }

    // The check sees an inconsistent cut: g-1 and g-2 captured one after the other, each alone,
    // with messages from g-1 reaching g-2 in between. Restored, g-2 has received from g-1 what
    // g-1 (as restored) has not sent yet. (Only that pair is read: g-2's connection to g-1 is
    // ahead of what g-1's TCP expects and stalls, as an inconsistent restore does to TCP.)
    await runSnapshot('g-1', { ...flags(), memory: true, name: 'g-1-alone' }, () => undefined);
    await consoleRun('g-2', '', /(?:VFM recv from=g-1 [^\n]*\n[\s\S]*){5}/, 60_000);
    await runSnapshot('g-2', { ...flags(), memory: true, name: 'g-2-alone' }, () => undefined);
    const inconsistent = await restoredPairs(
      ['g-1', 'g-2'],
      async () => {
        await runRestore('g-1', { ...flags(), snapshot: 'g-1-alone', all: false }, () => undefined);
        await runRestore('g-2', { ...flags(), snapshot: 'g-2-alone', all: false }, () => undefined);
      },
      [['g-1', 'g-2']],
    );
    const g1g2 = inconsistent.find((check) => check.from === 'g-1' && check.to === 'g-2')!;
    process.stdout.write(
      `captured apart: g-1 -> g-2: sent up to ${g1g2.sentUpTo}, received up to ${g1g2.receivedUpTo} (as restored)\n`,
    );
    expect(g1g2.receivedUpTo).toBeGreaterThan(g1g2.sentUpTo);
  }, 400_000);
});

describe('rolling checkpoints on QEMU (issue 16, done-means 4)', () => {
  it('keeps exactly `keep` snapshots; the oldest is gone from the host', async () => {
    const name = 'counter-rolling';
    await stack.client.create(VM_SNAPSHOT_SCHEDULE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineSnapshotSchedule',
      metadata: { name, namespace: NAMESPACE },
      spec: { source: { vmName: VM }, memory: false, intervalSeconds: 10, keep: 2 },
    } as ScheduleObject);
    const ofSchedule = async () =>
      (
        await stack.client.list<SnapshotObject>(VM_SNAPSHOT, {
          namespace: NAMESPACE,
          labelSelector: `virtfleet.io/snapshot-schedule=${name}`,
        })
      ).items;
    const poll = async (check: (list: SnapshotObject[]) => boolean, what: string): Promise<SnapshotObject[]> => {
      for (const deadline = Date.now() + 120_000; ;) {
        const list = await ofSchedule();
        if (check(list)) return list;
        if (Date.now() > deadline)
          throw new Error(
            `${what}: not within 2 min; snapshots: ${JSON.stringify(list.map((s) => [s.metadata.name, s.status?.phase]))}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };
    const ready = (list: SnapshotObject[]) => list.filter((s) => s.status?.phase === 'Ready');
    const first = ready(await poll((list) => ready(list).length >= 1, 'the first snapshot Ready'))[0]!;
    // Two intervals later the third is Ready and the first is pruned: exactly two left.
    const kept = await poll(
      (list) => !list.some((s) => s.metadata.name === first.metadata.name) && ready(list).length === 2,
      'the first pruned, two kept',
    );
    const host = stack.rigHost(stack.vm(VM)!.status!.host!);
    const conn = await LibvirtConnection.open(host.uri);
    try {
      const onHost = await conn.domainSnapshotListNames(uid(), {});
      expect(onHost).not.toContain(first.status!.vms![0]!.snapshotName);
      for (const snapshot of ready(kept)) expect(onHost).toContain(snapshot.status!.vms![0]!.snapshotName);
    } finally {
      await conn.close();
    }
    await stack.client.patch(VM_SNAPSHOT_SCHEDULE, NAMESPACE, name, { spec: { suspend: true } });
    await stack.client.delete(VM_SNAPSHOT_SCHEDULE, NAMESPACE, name);
  }, 200_000);
});

describe('refusals on QEMU hosts, each naming the thing and what to do (issue 16, done-means 5)', () => {
  /** Creates the snapshot and waits until it settles. */
  async function settled(name: string, spec: SnapshotObject['spec']): Promise<SnapshotObject> {
    await stack.client.create(VM_SNAPSHOT, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineSnapshot',
      metadata: { name, namespace: NAMESPACE },
      spec,
    } as SnapshotObject);
    for (const deadline = Date.now() + 60_000; ;) {
      const snapshot = await stack.client.get<SnapshotObject>(VM_SNAPSHOT, NAMESPACE, name);
      if (snapshot.status?.phase === 'Ready' || snapshot.status?.phase === 'Failed') return snapshot;
      if (Date.now() > deadline)
        throw new Error(`${name}: not settled within 60 s: ${JSON.stringify(snapshot.status)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  const ready = (object: SnapshotObject | RestoreObject) =>
    (object.status?.conditions as Array<{ type: string; reason?: string; message?: string }> | undefined)?.find(
      (c) => c.type === 'Ready',
    );

  it('a selector that matches nothing', async () => {
    const snapshot = await settled('nothing', {
      source: { selector: { matchLabels: { app: 'absent' } } },
      memory: false,
    });
    expect(snapshot.status?.phase).toBe('Failed');
    expect(ready(snapshot)).toMatchObject({
      reason: 'SelectorMatchesNothing',
      message: expect.stringMatching(
        /^spec\.source\.selector \{"matchLabels":\{"app":"absent"\}\} matches no VirtualMachine in namespace default: fix the selector or label the VMs/,
      ),
    });
  });

  it('a raw disk, named, on a VM defined on a QEMU host', async () => {
    // A raw volume where the VM's disk "data" looks for its volume: the VM takes it as it is.
    const storage = { name: `snap-${process.pid}`, path: join(stack.rig.sharedDir, `snap-${process.pid}`) };
    const volume = volumeName(domainName(NAMESPACE, 'rawvm', '00000000-0000-0000-0000-000000000000'), 'data');
    const hypervisors = stack.rig.hosts.map((host) => stack.fleet.hypervisor(host.uri));
    for (const hypervisor of hypervisors) await hypervisor.ensureStoragePool(storage);
    await hypervisors[0]!.createVolume(storage.name, { name: volume, format: 'raw', capacityBytes: 16 * 1024 * 1024 });
    // The pool's directory is shared: the other host sees the file once it lists the pool again.
    await hypervisors[1]!.refreshStoragePool(storage.name);
    const image = await guestImage();
    await stack.client.create(VIRTUAL_MACHINE, {
      ...guestVm('rawvm', POOL, image, {
        runStrategy: 'Manual',
        disks: [{ name: 'data', size: '16Mi', source: { blank: {} } }],
      }),
    });
    await stack.until(
      () =>
        (stack.vm('rawvm')?.status?.conditions as Array<{ type: string; status: string }> | undefined)?.some(
          (c) => c.type === 'Provisioned' && c.status === 'True',
        ) === true,
      60_000,
      'rawvm defined on its host',
    );
    const snapshot = await settled('raw', { source: { vmName: 'rawvm' }, memory: false });
    expect(snapshot.status?.phase).toBe('Failed');
    expect(ready(snapshot)?.reason).toBe('RawDisk');
    expect(ready(snapshot)?.message).toMatch(
      new RegExp(
        `^disk data of VirtualMachine rawvm is raw \\(.*/${volume}\\): snapshots are kept inside qcow2 disks; give the VM a qcow2 disk`,
      ),
    );
    await stack.client.delete(VIRTUAL_MACHINE, NAMESPACE, 'rawvm');
  }, 120_000);

  it('a snapshot of a VM whose host is not ready', async () => {
    const hostName = stack.vm(VM)!.status!.host!;
    const host = stack.rigHost(hostName);
    host.freeze(); // libvirtd stopped: heartbeats go unanswered, the host turns NotReady
    try {
      await stack.until(() => (stack.pool(POOL)?.status?.readyHosts ?? 2) < 2, 60_000, `${hostName} NotReady`);
      const snapshot = await settled('host-down', { source: { vmName: VM }, memory: false });
      expect(snapshot.status?.phase).toBe('Failed');
      expect(ready(snapshot)?.reason).toBe('HostNotReady');
      expect(ready(snapshot)?.message).toMatch(
        new RegExp(
          `^VirtualMachine ${VM} is on host ${hostName} of HostPool ${POOL}, which is not ready \\(.+\\): bring the host back`,
        ),
      );
    } finally {
      host.thaw();
    }
    await stack.until(() => stack.pool(POOL)?.status?.readyHosts === 2, 60_000, `${hostName} Ready again`);
  }, 120_000);

  it('a restore while the VM is live-migrating', async () => {
    const snapshot = await settled('before-move', { source: { vmName: VM }, memory: false });
    expect(snapshot.status?.phase).toBe('Ready');
    const from = stack.vm(VM)!.status!.host!;
    const source = stack.rigHost(from);
    // Slowed so that the 128 MiB guest's migration would take long enough to restore in its
    // middle. (libvirt 9.0 refuses to migrate a domain that has snapshots, and the controller
    // tries three times: status.migration is there meanwhile; the message is printed below.)
    await source.shape(40);
    try {
      await runAction('migrate', VM, { ...flags(), wait: false }, () => undefined);
      await stack.until(() => stack.vm(VM)?.status?.migration !== undefined, 60_000, 'status.migration written');
      await stack.client.create(VM_RESTORE, {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'VirtualMachineRestore',
        metadata: { name: 'while-moving', namespace: NAMESPACE },
        spec: { snapshotName: 'before-move' },
      } as RestoreObject);
      let restore: RestoreObject | undefined;
      for (const deadline = Date.now() + 60_000; ;) {
        restore = await stack.client.get<RestoreObject>(VM_RESTORE, NAMESPACE, 'while-moving');
        if (restore.status?.phase === 'Failed' || restore.status?.phase === 'Succeeded' || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(restore.status?.phase).toBe('Failed');
      expect(ready(restore)).toMatchObject({
        reason: 'VmMigrating',
        message: expect.stringMatching(
          new RegExp(`VirtualMachine ${VM} is live-migrating from ${from} to rig-\\d: wait until its migration ends`),
        ),
      });
      process.stdout.write(`restore while migrating: ${ready(restore)?.message}\n`);
    } finally {
      await source.unshape();
    }
    await stack.until(
      () => stack.vm(VM)?.status?.migration === undefined && isRunning(stack.vm(VM)),
      120_000,
      'the migration over',
    );
    const migrating = (stack.vm(VM)?.status?.conditions as Array<{ type: string; message?: string }> | undefined)?.find(
      (c) => c.type === 'Migrating',
    );
    process.stdout.write(`after it: on ${stack.vm(VM)?.status?.host}; Migrating: ${migrating?.message}\n`);
  }, 240_000);
});
