// Issue 16 on a real libvirtd host with QEMU (test/rig), the rig's tiny guest counting heartbeats
// on its console ("VIRTFLEET-GUEST-HEARTBEAT n=1, 2, 3…", one a second, from boot):
// - done-means 3: `vm suspend` leaves no QEMU process for the VM; `vm resume` brings the guest
//   back and its counter continues (a boot would start again at n=1 after the ready marker);
// - a snapshot with memory, restored: the counter goes back to the snapshot's value and counts on
//   from there. The VM has a blank qcow2 disk: QEMU keeps internal snapshots in qcow2 disks and
//   refuses one of a VM without any.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runRestore, runSnapshot } from '../../src/cli/snapshot.js';
import { runAction } from '../../src/cli/vm.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { guestImage } from '../rig/guest.js';
import { qemuProcessesByUuid } from '../rig/qemu-copies.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-snap';
const VM = 'counter';
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+) uptime=([0-9.]+)\r?\n/;

const stack: RigController = new RigController({
  hosts: 1,
  tag: 'snap',
  detail: () => JSON.stringify(stack.vm(VM)?.status),
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

/** The next whole heartbeat line on the console after it is opened: its n and uptime. */
async function nextHeartbeat(timeoutMs = 30_000): Promise<{ n: number; uptime: number }> {
  const host = stack.rigHost(stack.vm(VM)!.status!.host!);
  const conn = await LibvirtConnection.open(host.uri);
  try {
    const console = await conn.domainOpenConsole(uid(), { force: true });
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

describe('snapshot with memory and restore on QEMU (issue 16, done-means 1, the counter part)', () => {
  it('brings the counter back to the snapshot and counts on from there', async () => {
    await runSnapshot(VM, { ...flags(), memory: true, name: 'counter-mem' }, () => undefined);
    const atSnapshot = await nextHeartbeat();
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
  }, 300_000);
});
