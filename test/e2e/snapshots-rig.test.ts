// Issue 16 on a real libvirtd host with QEMU (test/rig), the rig's tiny guest counting heartbeats
// on its console ("VIRTFLEET-GUEST-HEARTBEAT n=1, 2, 3…", one a second, from boot):
// - done-means 3: `vm suspend` leaves no QEMU process for the VM; `vm resume` brings the guest
//   back and its counter continues (a boot would start again at n=1 after the ready marker);
// - done-means 1: a snapshot with memory, restored: the counter goes back to the snapshot's value
//   and counts on from there, and a marker the guest wrote to its disk after the snapshot is gone;
// - a group of two VMs on the two hosts captured as one cut (all paused before any capture) and
//   restored: each guest's counter goes back;
// - done-means 4: a snapshot schedule every 10 s keeping 2 leaves exactly 2, the oldest gone from
//   the host. The VM has a blank qcow2 disk: QEMU keeps internal snapshots in qcow2 disks and
//   refuses one of a VM without any.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runRestore, runSnapshot } from '../../src/cli/snapshot.js';
import { runAction } from '../../src/cli/vm.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import {
  VM_SNAPSHOT,
  VM_SNAPSHOT_SCHEDULE,
  type ScheduleObject,
  type SnapshotObject,
} from '../../src/controllers/snapshot/types.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { guestImage } from '../rig/guest.js';
import { qemuProcessesByUuid } from '../rig/qemu-copies.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-snap';
const VM = 'counter';
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+) uptime=([0-9.]+)\r?\n/;

const stack: RigController = new RigController({
  hosts: 2,
  tag: 'snap',
  detail: () =>
    JSON.stringify(stack.pool(POOL)?.status) +
    JSON.stringify(
      ['counter', 'g-1', 'g-2'].map((name) => ({
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
      storage: { pool: `snap-${process.pid}`, path: join(stack.rig.sharedDir, `snap-${process.pid}`) },
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
    await runAction('suspend', VM, flags(), () => undefined);
    await stack.until(() => stack.vm(VM)?.status?.phase === 'Suspended', 60_000, 'Suspended');
    expect(qemuProcessesByUuid().get(uid())).toBeUndefined();

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

describe('a group snapshot across two QEMU hosts, restored', () => {
  it('captures both as one cut and brings both counters back', async () => {
    const image = await guestImage();
    for (const name of ['g-1', 'g-2'])
      await stack.client.create(VIRTUAL_MACHINE, {
        ...guestVm(name, POOL, image, {
          disks: [{ name: 'scratch', size: '16Mi', source: { blank: {} } }],
          placement: { antiAffinityGroup: 'snap-group' },
        }),
        metadata: { name, namespace: NAMESPACE, labels: { group: 'snap' } },
      });
    for (const name of ['g-1', 'g-2']) await stack.until(() => isRunning(stack.vm(name)), 120_000, `${name} running`);
    expect(new Set(['g-1', 'g-2'].map((name) => stack.vm(name)?.status?.host)).size).toBe(2);

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
    expect(snapshot.status?.vms?.map((entry) => `${entry.vm}:${entry.consistency}`)).toEqual([
      'g-1:Memory',
      'g-2:Memory',
    ]);
    expect(snapshot.status?.cut?.logicalClock).toBe(1);
    process.stdout.write(`group of 2 on 2 QEMU hosts: pause window ${snapshot.status?.cut?.pauseWindowMs} ms\n`);
    const atSnapshot = await Promise.all(['g-1', 'g-2'].map((name) => nextHeartbeat(name)));
    let later = await Promise.all(['g-1', 'g-2'].map((name) => nextHeartbeat(name)));
    while (later.some((beat, i) => beat.n < atSnapshot[i]!.n + 5))
      later = await Promise.all(['g-1', 'g-2'].map((name) => nextHeartbeat(name)));

    await runRestore('g-1', { ...flags(), snapshot: 'group-mem', all: true }, () => undefined);
    for (const name of ['g-1', 'g-2'])
      await stack.until(() => isRunning(stack.vm(name)), 60_000, `${name} running again`);
    const restored = await Promise.all(['g-1', 'g-2'].map((name) => nextHeartbeat(name)));
    for (const [i, beat] of restored.entries()) {
      expect(beat.n).toBeLessThan(later[i]!.n);
      expect(beat.n).toBeGreaterThanOrEqual(atSnapshot[i]!.n - 5);
    }
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
