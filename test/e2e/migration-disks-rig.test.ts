// Live migration of a VM with a disk on host-local storage (issue 18, Done 1 and the shortfall
// fault), on real libvirtd hosts (test/rig) with the tiny guest writing a numbered pattern to its
// qcow2 disk the whole time. One guest, shared by both cases:
//
// 1. rig-0 goes into maintenance with only rig-2 to go to, whose storage pool is a 256 KiB tmpfs:
//    the migration is refused before anything is copied, naming the pool and the shortfall; the
//    drain reports the VM as not movable and it keeps running (and writing) on rig-0.
// 2. Out of maintenance, `virtfleet vm migrate --to rig-1` copies the disk while the guest writes
//    on (status.migration says Copied, with the disks' bytes); afterwards the guest drops its
//    page cache and reads back every sector it wrote, before and during the migration, from the
//    disk on rig-1. The volume is gone from rig-0, and no two copies ever ran at once.
// 3. Back to rig-0, the job aborted on the source while it copies: the half-copied volume on
//    rig-0 is removed, the VM runs on on rig-1; the retry moves it, and the pattern checks out.
// 4. To rig-1 again, the controller SIGKILLed while libvirt copies: libvirt finishes alone, the
//    restarted controller settles where the VM is and removes the volume left on rig-0.
// 5. (Done 2) A second guest, writing its pattern to a disk on a pool the hosts share (HostPool
//    rig-disks-shared: the rig's shared directory, spec.storage.shared and assumeCoherent),
//    starts on rig-1 beside the writer. rig-1 goes into maintenance in both HostPools: the
//    shared-disk VM moves to rig-0 with nothing copied, the local-disk one with its disk copied;
//    both guests read their whole pattern back there, and rig-1 ends with no domain at all.
//    Asked directly without VIR_MIGRATE_UNSAFE first, libvirt refuses the shared disk.
// 6. rig-0 cut off (its veth down) while it copies the writer's disk to rig-1: never two copies;
//    libvirt's keepalive ends the job on both sides (~30 s), the half-copied volume on rig-1 goes
//    before the failure counts (else the retry is refused on it), and the VM ends on one host
//    (rig-0, or rig-1 when the retry after the link is back moves it) with its disk there only
//    and its pattern intact.
//    (libvirt 9.0 calls a disk on a file system it does not know as shared, such as the rig's,
//    unsafe to migrate without copying; assumeCoherent is the operator's word that the hosts see
//    one coherent file system, which on the rig is true: every host is a namespace of one kernel.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runAction } from '../../src/cli/vm.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { volumeNameOf } from '../../src/controllers/vm-storage.js';
import { LibvirtConnection, type LibvirtConsole } from '../../src/hypervisors/libvirt/native/index.js';
import type { Condition } from '../../src/runtime/conditions.js';
import type { KubeObject } from '../../src/runtime/kube-client.js';
import { guestImage } from '../rig/guest.js';
import { RunningCopiesChecker } from '../rig/running-copies.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const run = promisify(execFile);
const POOL = 'rig-disks';
const VM = 'writer';
/** Case 5: a HostPool over the same hosts whose disks are on the rig's shared directory, and its VM. */
const SHARED_POOL = 'rig-disks-shared';
const SHARER = 'sharer';
const SHARED_STORAGE_POOL = 'vf-shared';
const STORAGE_POOL = 'vf-local';
/** Under each host's private /var/lib/libvirt: the same path, a different directory per host. */
const STORAGE_PATH = '/var/lib/libvirt/vf-local';
const stack: RigController = new RigController({
  hosts: 3,
  tag: 'mdisks',
  // Its own process, so that case 4 can SIGKILL it mid-copy.
  controllerProcess: true,
  detail: () => `VM: ${JSON.stringify(stack.vm(VM)?.status)}`,
});
const hostSpec = (i: number, extra: Record<string, unknown> = {}) => stack.poolHost(i, extra);
const vm = () => stack.vm(VM);
const migrating = () => (vm()?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Migrating');

const DISKCHECK = /VIRTFLEET-DISKCHECK n=(\d+) lines=(\d+) bad=(\d+)\r?\n/g;

interface DiskCheck {
  n: number;
  lines: number;
  bad: number;
}

/** The guest's console output from now on: its disk writer's checks (vf-diskwriter, test/rig/build-guest.sh). */
class GuestConsole {
  text = '';
  private constructor(
    private readonly conn: LibvirtConnection,
    private readonly console: LibvirtConsole,
  ) {}
  static async open(host: number, name = VM): Promise<GuestConsole> {
    const conn = await LibvirtConnection.open(stack.rig.hosts[host]!.uri);
    const console = await conn.domainOpenConsole(stack.vm(name)!.metadata.uid ?? '', { force: true });
    const log = new GuestConsole(conn, console);
    console.onData((data) => {
      log.text += data.toString('latin1');
    });
    return log;
  }
  checks(): DiskCheck[] {
    return [...this.text.matchAll(DISKCHECK)].map((m) => ({ n: Number(m[1]), lines: Number(m[2]), bad: Number(m[3]) }));
  }
  /** Waits until this console has shown `count` checks; returns the last. */
  async check(count: number, ms: number, what: string): Promise<DiskCheck> {
    for (const deadline = Date.now() + ms; ;) {
      const checks = this.checks();
      if (checks.length >= count) return checks.at(-1)!;
      if (Date.now() > deadline)
        throw new Error(`${what}: not within ${ms} ms; console said: ${this.text.slice(-800)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  async close(): Promise<void> {
    await this.console.close().catch(() => undefined);
    await this.conn.close();
  }
}

/** The volumes of storage pool vf-local (or `storagePool`) on a rig host (none when it has no such pool). */
async function volumesOn(i: number, storagePool = STORAGE_POOL): Promise<string[]> {
  const conn = await LibvirtConnection.open(stack.rig.hosts[i]!.uri);
  try {
    const pool = (await conn.listStoragePools()).find((p) => p.name === storagePool);
    if (!pool) return [];
    await conn.storagePoolRefresh(storagePool);
    return (await conn.storagePoolListVolumes(storagePool)).map((v) => v.name).sort();
  } finally {
    await conn.close();
  }
}

let checker: RunningCopiesChecker | undefined;
let guest: GuestConsole | undefined;

beforeAll(async () => {
  await stack.start();
  // rig-2's pool directory is a 256 KiB tmpfs (in its own mount namespace): too small for the copy.
  const small = stack.rig.hosts[2]!;
  mkdirSync(small.privatePath(STORAGE_PATH), { recursive: true });
  // prettier-ignore
  await run('nsenter', ['-t', String(small.libvirtdPid), '-m', '--', 'mount', '-t', 'tmpfs', '-o', 'size=256k', 'vfsmall', STORAGE_PATH]);
  const image = await guestImage();
  await stack.client.create(
    HOST_POOL,
    hostPool(POOL, { hosts: [hostSpec(0)], storage: { pool: STORAGE_POOL, path: STORAGE_PATH } }),
  );
  await stack.client.create(
    VIRTUAL_MACHINE,
    guestVm(VM, POOL, image, {
      kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1 vf.diskwriter' },
      disks: [{ name: 'data', size: '64Mi', source: { blank: {} } }],
    }),
  );
  await stack.until(() => isRunning(vm()), 120_000, 'writer Running on rig-0');
  // Case 5's VM is counted too once it exists.
  checker = new RunningCopiesChecker(
    stack.rig,
    () =>
      new Map(
        [VM, SHARER].flatMap((name) => {
          const uid = stack.vm(name)?.metadata.uid;
          return uid ? [[uid, name] as [string, string]] : [];
        }),
      ),
    1000,
  );
  await checker.start();
  guest = await GuestConsole.open(0);
}, 300_000);

afterAll(async () => {
  await guest?.close();
  await checker?.stop();
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

describe('a VM with a disk on host-local storage', () => {
  it('is refused, before anything is copied, when the destination pool lacks room; the drain reports it and it runs on', async () => {
    // The writer at work, its pattern read back right on rig-0.
    expect(await guest!.check(1, 60_000, 'a disk check on rig-0')).toMatchObject({ bad: 0 });
    await stack.client.patch(HOST_POOL, undefined, POOL, {
      spec: { hosts: [hostSpec(0, { maintenance: true }), hostSpec(2)] },
    });
    await stack.until(() => migrating()?.reason === 'MigrationRefused', 60_000, 'migration refused');
    expect(migrating()?.message).toMatch(
      new RegExp(
        `^host rig-0 is in maintenance, but the VM cannot move to rig-2: storage pool ${STORAGE_POOL} on rig-2 has \\d+ bytes free, ` +
          `the copies need \\d+ \\(the disks' allocation on rig-0\\): short by \\d+ bytes; free space in pool ${STORAGE_POOL} on rig-2`,
      ),
    );
    expect(migrating()?.message).toMatch(/; the VM keeps running on rig-0$/);
    await stack.until(
      () =>
        (stack.pool(POOL)?.status?.conditions as Condition[] | undefined)
          ?.find((c) => c.type === 'Maintenance')
          ?.message.includes(`not movable: ${VM}`) ?? false,
      30_000,
      'the drain reports the VM as not movable',
    );
    // Nothing was made on rig-2; the guest runs on where it was, still writing.
    expect(await volumesOn(2)).toEqual([]);
    expect(vm()?.status?.host).toBe('rig-0');
    expect(isRunning(vm())).toBe(true);
    const seen = guest!.checks().length;
    const before = guest!.checks().at(-1)!.n;
    const after = await guest!.check(seen + 1, 30_000, 'another disk check on rig-0');
    expect(after.n).toBeGreaterThan(before);
    expect(after).toEqual({ n: after.n, lines: after.n, bad: 0 });
  }, 200_000);

  it('live-migrates with its disk copied while the guest writes; every sector is there afterwards', async () => {
    // Out of maintenance; rig-2 leaves the pool, rig-1 joins.
    await stack.client.patch(HOST_POOL, undefined, POOL, { spec: { hosts: [hostSpec(0), hostSpec(1)] } });
    await stack.until(() => migrating()?.reason === 'NotMigrating', 30_000, 'maintenance over');
    // rig-1 just joined: a request before it is Ready finds no destination (seen under load).
    await stack.until(() => stack.pool(POOL)?.status?.readyHosts === 2, 60_000, 'rig-0 and rig-1 Ready');
    const writtenBefore = guest!.checks().at(-1)!.n;
    const seen = { storage: '', diskTotal: 0 };
    const watching = stack.until(
      () => {
        const migration = vm()?.status?.migration;
        if (migration) {
          seen.storage = migration.storage ?? seen.storage;
          seen.diskTotal = migration.diskTotalBytes ?? seen.diskTotal;
        }
        return vm()?.status?.host === 'rig-1' && migrating()?.reason === 'Migrated';
      },
      240_000,
      'writer migrated to rig-1',
    );
    const lines: string[] = [];
    await runAction(
      'migrate',
      VM,
      { namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '240', to: 'rig-1' },
      (line) => lines.push(line),
    );
    await watching;
    await guest!.close();
    // Two checks on rig-1: the second read every sector (page cache dropped) from rig-1's disk.
    guest = await GuestConsole.open(1);
    const check = await guest.check(2, 60_000, 'two disk checks on rig-1');
    process.stdout.write(
      `migration with storage copy on the rig: ${writtenBefore} sectors written before it, ${check.n} by the check on rig-1; ` +
        `disk bytes in status.migration while it ran: ${seen.diskTotal || 'not looked at in time'}; ${lines.at(-1) ?? ''}\n`,
    );

    expect(seen.storage).toBe('Copied');
    // The disk's figures in status.migration show only when the job is looked at while the copy
    // runs; 64 MiB on a quiet machine can be done before that (so seen.diskTotal is printed, not
    // asserted). The start's Event says what is copied, every time.
    const startedEvents = async () =>
      (
        await stack.client.list<KubeObject & { message?: string }>(
          { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
          {
            namespace: NAMESPACE,
            fieldSelector: `involvedObject.uid=${vm()?.metadata.uid ?? ''},reason=MigrationStarted`,
          },
        )
      ).items.map((e) => e.message ?? '');
    const copied = /^live migration from rig-0 to rig-1 started \(.*\); disks: copied \(data: 67108864 bytes\)$/;
    let messages = await startedEvents();
    // Events are written in the background: a few seconds at most.
    for (const deadline = Date.now() + 15_000; !messages.some((m) => copied.test(m)) && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      messages = await startedEvents();
    }
    expect(messages).toContainEqual(expect.stringMatching(copied));
    expect(check.n).toBeGreaterThan(writtenBefore);
    expect(check).toEqual({ n: check.n, lines: check.n, bad: 0 });
    expect(migrating()?.message).toMatch(/^migrated live from rig-0 to rig-1/);
    // The source's copy of the disk is gone; the destination has it.
    const volume = volumeNameOf(vm()!, 'data');
    expect(await volumesOn(0)).toEqual([]);
    expect(await volumesOn(1)).toEqual([volume]);
    await checker!.sample();
    expect(checker!.violations).toEqual([]);
    expect(checker!.runningOn(vm()!.metadata.uid ?? '')).toEqual(['host1']);
  }, 400_000);

  it('after a copy aborted half-way, the destination keeps no volume; the retry then moves the VM with its disk', async () => {
    const uid = vm()!.metadata.uid ?? '';
    const failed = stack.until(() => migrating()?.reason === 'MigrationFailed', 120_000, 'the migration failed');
    const lines: string[] = [];
    const asked = runAction(
      'migrate',
      VM,
      { namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '240', to: 'rig-0' },
      (line) => lines.push(line),
    );
    // Abort the job on the source (rig-1) as soon as libvirt runs it: the copy is under way then.
    const source = await LibvirtConnection.open(stack.rig.hosts[1]!.uri);
    try {
      for (const deadline = Date.now() + 60_000; ;) {
        const job = await source.domainGetJobStats(uid, {}).catch(() => undefined);
        if (job?.operation === 'migration_out' && (job.type === 'bounded' || job.type === 'unbounded')) {
          await source.domainAbortJob(uid);
          break;
        }
        if (Date.now() > deadline) throw new Error('no migration job on rig-1 within 60 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await source.close();
    }
    await failed;
    expect(migrating()?.message).toMatch(
      /^migration from rig-1 to rig-0 failed \(attempt 1 of 3\): .*aborted.*; retrying$/,
    );
    // The half-copied volume went before the failure was recorded; the VM runs on rig-1 with its own.
    expect(await volumesOn(0)).toEqual([]);
    expect(await volumesOn(1)).toEqual([volumeNameOf(vm()!, 'data')]);
    expect(vm()?.status?.host).toBe('rig-1');

    // The retry (10 s later) moves it, the disk copied again.
    await asked;
    await stack.until(() => vm()?.status?.host === 'rig-0' && migrating()?.reason === 'Migrated', 120_000, 'on rig-0');
    await guest!.close();
    guest = await GuestConsole.open(0);
    const check = await guest.check(2, 60_000, 'two disk checks on rig-0');
    expect(check).toEqual({ n: check.n, lines: check.n, bad: 0 });
    expect(await volumesOn(1)).toEqual([]);
    await checker!.sample();
    expect(checker!.violations).toEqual([]);
  }, 400_000);

  it('after the controller is SIGKILLed mid-copy, the restarted one finds the VM where libvirt took it and removes the copy it left', async () => {
    const uid = vm()!.metadata.uid ?? '';
    const asked = runAction(
      'migrate',
      VM,
      { namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '240', to: 'rig-1' },
      () => undefined,
    ).catch(() => undefined); // its answer comes from the restarted controller, or not at all
    await stack.until(() => vm()?.status?.migration?.storage === 'Copied', 60_000, 'the copy recorded');
    // Killed once the job runs on the source: the job's own clean-up dies with it.
    const source = await LibvirtConnection.open(stack.rig.hosts[0]!.uri);
    try {
      for (const deadline = Date.now() + 30_000; ;) {
        const job = await source.domainGetJobStats(uid, {}).catch(() => undefined);
        if (job?.operation === 'migration_out' && (job.type === 'bounded' || job.type === 'unbounded')) break;
        if (Date.now() > deadline) throw new Error('no migration job on rig-0 within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await stack.killController();
    } finally {
      await source.close();
    }
    await stack.startController();
    // libvirt finishes the migration without the controller; the restarted one settles it.
    await stack.until(
      () => vm()?.status?.host === 'rig-1' && vm()?.status?.migration === undefined,
      180_000,
      'settled on rig-1',
    );
    await stack.until(() => migrating()?.reason === 'Migrated', 60_000, 'Migrated');
    await asked;
    expect(await volumesOn(0)).toEqual([]);
    expect(await volumesOn(1)).toEqual([volumeNameOf(vm()!, 'data')]);
    await guest!.close();
    guest = await GuestConsole.open(1);
    const check = await guest.check(2, 60_000, 'two disk checks on rig-1');
    expect(check).toEqual({ n: check.n, lines: check.n, bad: 0 });
    await checker!.sample();
    expect(checker!.violations).toEqual([]);
    expect(checker!.runningOn(uid)).toEqual(['host1']);
  }, 400_000);
});

/** The messages of the VM's Events of one reason (written in the background: waited for, a few seconds at most). */
async function eventMessages(name: string, reason: string, want: RegExp): Promise<string[]> {
  const read = async () =>
    (
      await stack.client.list<KubeObject & { message?: string }>(
        { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
        {
          namespace: NAMESPACE,
          fieldSelector: `involvedObject.uid=${stack.vm(name)?.metadata.uid ?? ''},reason=${reason}`,
        },
      )
    ).items.map((e) => e.message ?? '');
  let messages = await read();
  for (const deadline = Date.now() + 15_000; !messages.some((m) => want.test(m)) && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    messages = await read();
  }
  return messages;
}

describe('a drain of a host with a shared-disk VM and a local-disk VM', () => {
  it('moves both off, the shared disk not copied and the local one copied; both guests read their pattern back; the host ends empty', async () => {
    // The writer runs on rig-1 since case 4; the shared-disk guest joins it there.
    expect(vm()?.status?.host).toBe('rig-1');
    const sharer = () => stack.vm(SHARER);
    const sharerMigrating = () =>
      (sharer()?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Migrating');
    const sharedStorage = {
      pool: SHARED_STORAGE_POOL,
      path: join(stack.rig.sharedDir, 'disks'),
      shared: true,
      assumeCoherent: true,
    };
    await stack.client.create(HOST_POOL, hostPool(SHARED_POOL, { hosts: [hostSpec(1)], storage: sharedStorage }));
    const image = await guestImage();
    await stack.client.create(
      VIRTUAL_MACHINE,
      guestVm(SHARER, SHARED_POOL, image, {
        kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1 vf.diskwriter' },
        disks: [{ name: 'data', size: '32Mi', source: { blank: {} } }],
      }),
    );
    await stack.until(
      () => isRunning(sharer()) && sharer()?.status?.host === 'rig-1',
      120_000,
      'sharer Running on rig-1',
    );
    let shared = await GuestConsole.open(1, SHARER);
    try {
      expect(await shared.check(1, 60_000, 'a disk check of the shared-disk guest on rig-1')).toMatchObject({ bad: 0 });
      const before = { writer: guest!.checks().at(-1)?.n ?? 0, sharer: shared.checks().at(-1)!.n };

      // Why assumeCoherent: asked without VIR_MIGRATE_UNSAFE, libvirt refuses this disk on the rig's
      // file system before anything starts.
      const source = await LibvirtConnection.open(stack.rig.hosts[1]!.uri);
      try {
        await expect(
          source.domainMigrate(sharer()!.metadata.uid ?? '', {
            destinationUri: stack.rig.hosts[0]!.uri,
            peerToPeer: true,
            live: true,
          }),
        ).rejects.toMatchObject({ codeName: 'VIR_ERR_MIGRATE_UNSAFE' });
      } finally {
        await source.close();
      }
      expect(sharer()?.status?.host).toBe('rig-1');

      // rig-1 into maintenance in both HostPools; rig-0 is the only other host of each.
      const started = Date.now();
      const drained = (pool: string) =>
        (stack.pool(pool)?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Maintenance');
      await stack.client.patch(HOST_POOL, undefined, SHARED_POOL, {
        spec: { hosts: [hostSpec(0), hostSpec(1, { maintenance: true })] },
      });
      await stack.client.patch(HOST_POOL, undefined, POOL, {
        spec: { hosts: [hostSpec(0), hostSpec(1, { maintenance: true })] },
      });
      await stack.until(
        () =>
          vm()?.status?.host === 'rig-0' &&
          migrating()?.reason === 'Migrated' &&
          sharer()?.status?.host === 'rig-0' &&
          sharerMigrating()?.reason === 'Migrated',
        240_000,
        'both VMs migrated to rig-0',
      );
      const took = Date.now() - started;
      await stack.until(
        () => drained(POOL)?.reason === 'Drained' && drained(SHARED_POOL)?.reason === 'Drained',
        30_000,
        'both HostPools Drained',
      );
      expect(drained(POOL)?.message).toBe('hosts in maintenance: rig-1: empty');
      expect(drained(SHARED_POOL)?.message).toBe('hosts in maintenance: rig-1: empty');
      expect(migrating()?.message).toMatch(/^migrated live from rig-1 to rig-0/);
      expect(sharerMigrating()?.message).toMatch(/^migrated live from rig-1 to rig-0/);

      // What each migration did with the disk, from its start's Event.
      const sharedWords =
        /^live migration from rig-1 to rig-0 started \(host rig-1 is in maintenance\); disks: on shared storage, not copied \(HostPool spec\.storage\.assumeCoherent: /;
      expect(await eventMessages(SHARER, 'MigrationStarted', sharedWords)).toContainEqual(
        expect.stringMatching(sharedWords),
      );
      const copiedWords =
        /^live migration from rig-1 to rig-0 started \(host rig-1 is in maintenance\); disks: copied \(data: 67108864 bytes\)$/;
      expect(await eventMessages(VM, 'MigrationStarted', copiedWords)).toContainEqual(
        expect.stringMatching(copiedWords),
      );

      // Both guests, on rig-0 now, drop their page cache and read back every sector they wrote.
      await guest!.close();
      guest = await GuestConsole.open(0);
      await shared.close();
      shared = await GuestConsole.open(0, SHARER);
      const [writerCheck, sharerCheck] = await Promise.all([
        guest.check(2, 60_000, 'two disk checks of the writer on rig-0'),
        shared.check(2, 60_000, 'two disk checks of the shared-disk guest on rig-0'),
      ]);
      process.stdout.write(
        `drain of rig-1 (a shared-disk and a local-disk VM) on the rig: ${took} ms; sectors written before/by the check on rig-0: ` +
          `shared ${before.sharer}/${sharerCheck.n}, local ${before.writer}/${writerCheck.n}\n`,
      );
      expect(sharerCheck.n).toBeGreaterThan(before.sharer);
      expect(sharerCheck).toEqual({ n: sharerCheck.n, lines: sharerCheck.n, bad: 0 });
      expect(writerCheck.n).toBeGreaterThan(before.writer);
      expect(writerCheck).toEqual({ n: writerCheck.n, lines: writerCheck.n, bad: 0 });

      // The shared disk is the one file both hosts see; the local one moved to rig-0's pool.
      const sharedVolume = volumeNameOf(sharer()!, 'data');
      expect(await volumesOn(0, SHARED_STORAGE_POOL)).toEqual([sharedVolume]);
      expect(await volumesOn(1, SHARED_STORAGE_POOL)).toEqual([sharedVolume]);
      expect(await volumesOn(0)).toEqual([volumeNameOf(vm()!, 'data')]);
      expect(await volumesOn(1)).toEqual([]);
      // rig-1 is empty: no domain, running or defined.
      const conn = await LibvirtConnection.open(stack.rig.hosts[1]!.uri);
      try {
        expect(await conn.listAllDomains()).toEqual([]);
      } finally {
        await conn.close();
      }
      await checker!.sample();
      expect(checker!.violations).toEqual([]);
      expect(checker!.runningOn(vm()!.metadata.uid ?? '')).toEqual(['host0']);
      expect(checker!.runningOn(sharer()!.metadata.uid ?? '')).toEqual(['host0']);
    } finally {
      await shared.close();
    }
  }, 400_000);
});

describe('the source host cut off during a storage copy', () => {
  it('never runs two copies; the VM ends on one host with its disk there and no copy left on the other', async () => {
    // Both VMs run on rig-0 since case 5; rig-1 back out of maintenance.
    const uid = vm()!.metadata.uid ?? '';
    expect(vm()?.status?.host).toBe('rig-0');
    await stack.client.patch(HOST_POOL, undefined, POOL, { spec: { hosts: [hostSpec(0), hostSpec(1)] } });
    await stack.until(
      () =>
        stack.pool(POOL)?.status?.readyHosts === 2 &&
        (stack.pool(POOL)?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Maintenance')
          ?.reason === 'NoMaintenance',
      60_000,
      'maintenance over, both hosts Ready',
    );
    await guest!.close(); // its connection to rig-0 would break with the link
    guest = undefined;
    const seen: string[] = [];
    const t0 = Date.now();
    const note = () => {
      const c = migrating();
      const line = `${c?.reason}: ${c?.message ?? ''} (host ${vm()?.status?.host}, phase ${vm()?.status?.phase})`;
      if (seen.at(-1)?.endsWith(line) !== true) seen.push(`+${((Date.now() - t0) / 1000).toFixed(1)} s ${line}`);
    };
    const noting = setInterval(note, 200);
    const asked = runAction(
      'migrate',
      VM,
      { namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '400', to: 'rig-1' },
      () => undefined,
    ).then(
      () => 'succeeded',
      (error: unknown) => `failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    const rig0 = stack.rig.hosts[0]!;
    try {
      // Cut once the copy runs on rig-0.
      const source = await LibvirtConnection.open(rig0.uri);
      try {
        for (const deadline = Date.now() + 60_000; ;) {
          const job = await source.domainGetJobStats(uid, {}).catch(() => undefined);
          if (job?.operation === 'migration_out' && (job.type === 'bounded' || job.type === 'unbounded')) break;
          if (Date.now() > deadline) throw new Error('no migration job on rig-0 within 60 s');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        await source.close().catch(() => undefined);
      }
      seen.push(`+${((Date.now() - t0) / 1000).toFixed(1)} s rig-0 cut off`);
      await rig0.cutLink('link');
      try {
        // The controller loses the call and the source; libvirt's keepalive between the hosts
        // (about 30 s) ends the copy on both sides.
        await stack.until(() => migrating()?.reason !== 'Migrating', 120_000, 'the migration no longer under way');
        // The partition lasts until libvirt on rig-0 itself has ended the job (asked over its
        // local socket, which the cut leaves alone).
        const local = await LibvirtConnection.open(`qemu+unix:///system?socket=${join(rig0.runDir, 'libvirt-sock')}`);
        try {
          for (const deadline = Date.now() + 120_000; ;) {
            const job = await local.domainGetJobStats(uid, {}).catch(() => undefined);
            if (job && job.type !== 'bounded' && job.type !== 'unbounded') break;
            if (Date.now() > deadline) throw new Error(`rig-0 still runs the job after 120 s: ${JSON.stringify(job)}`);
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        } finally {
          await local.close();
        }
        seen.push(`+${((Date.now() - t0) / 1000).toFixed(1)} s the job ended on rig-0`);
        await checker!.sample();
        expect(checker!.violations).toEqual([]);
      } finally {
        await rig0.restoreLink('link');
        seen.push(`+${((Date.now() - t0) / 1000).toFixed(1)} s link back`);
      }
      const answer = await asked;
      await stack.until(() => vm()?.status?.migration === undefined && isRunning(vm()), 180_000, 'settled');
      const home = vm()!.status!.host!;
      const other = home === 'rig-0' ? 1 : 0;
      const volume = volumeNameOf(vm()!, 'data');
      // The copy on the other side goes once the controller can tell the domain is not there.
      for (const deadline = Date.now() + 60_000; (await volumesOn(other)).length > 0 && Date.now() < deadline;)
        await new Promise((resolve) => setTimeout(resolve, 1000));
      const cleaned = await eventMessages(VM, 'VolumesDeleted', /half-copied/);
      process.stdout.write(
        `source cut off during a storage copy: ends on ${home}, the request ${answer}; seen:\n${seen.join('\n')}\n` +
          `VolumesDeleted Events: ${cleaned.join(' | ')}\n`,
      );
      expect(await volumesOn(other)).toEqual([]);
      expect(await volumesOn(Number(home.replace('rig-', '')))).toEqual([volume]);
      guest = await GuestConsole.open(Number(home.replace('rig-', '')));
      const check = await guest.check(2, 60_000, `two disk checks on ${home}`);
      expect(check).toEqual({ n: check.n, lines: check.n, bad: 0 });
      await checker!.sample();
      expect(checker!.violations).toEqual([]);
      expect(checker!.runningOn(uid)).toEqual([`host${home.replace('rig-', '')}`]);
    } finally {
      clearInterval(noting);
    }
  }, 500_000);
});
