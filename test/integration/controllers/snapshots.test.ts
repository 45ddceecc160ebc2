// VirtualMachineSnapshot and VirtualMachineRestore on simulated hosts (libvirt's test driver,
// whose domain snapshots are real libvirt snapshots kept in the connection), with the controller
// in-process against the real API server: one VM with memory and disks only, a group of three
// VMs on two hosts as one consistent cut (the order of pause, capture and resume is read off the
// cut's diagnostics channel as the real calls complete), restores, refusals with their reasons,
// and the finalizer that deletes the host snapshots.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runRestore, runSnapshot, runSnapshotList } from '../../../src/cli/snapshot.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { CUT_CHANNEL, type CutStep } from '../../../src/controllers/snapshot/cut.js';
import {
  VM_RESTORE,
  VM_SNAPSHOT,
  VM_SNAPSHOT_SCHEDULE,
  type RestoreObject,
  type ScheduleObject,
  type SnapshotObject,
} from '../../../src/controllers/snapshot/types.js';
import { volumeName } from '../../../src/controllers/vm-storage.js';
import { domainName } from '../../../src/hypervisors/domain-name.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'snap-a', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
const B: HostDecl = { name: 'snap-b', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
const C: HostDecl = { name: 'snap-c', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
const STORAGE_POOL = 'vf-snap-volumes';
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';

const bench = new ControllerBench('vm-snap', { hostRetryMs: 1_000 });
let pool: string;
let downPool: string;
const steps: CutStep[] = [];
const onStep = (message: unknown) => steps.push(message as CutStep);

beforeAll(async () => {
  subscribe(CUT_CHANNEL, onStep);
  await bench.start();
  pool = await bench.createPool('snap', [A, B], {
    storage: { pool: STORAGE_POOL, path: `${bench.hosts.dir}/volumes` },
  });
  downPool = await bench.createPool('snapdown', [C]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'hosts ready');
  await bench.untilPool(downPool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  unsubscribe(CUT_CHANNEL, onStep);
  const snapshots = await bench.kube.list<SnapshotObject>(VM_SNAPSHOT, { namespace: bench.namespace });
  for (const snapshot of snapshots.items)
    await bench.kube.delete(VM_SNAPSHOT, bench.namespace, snapshot.metadata.name ?? '').catch(() => undefined);
  await bench.close();
});

const uidOf = (name: string) => bench.vm(name)?.metadata.uid ?? '';

function snapshotManifest(name: string, source: Record<string, unknown>, memory: boolean): SnapshotObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineSnapshot',
    metadata: { name, namespace: bench.namespace },
    spec: { source, memory },
  } as SnapshotObject;
}

/** Polls the API server (the bench's watch holds VMs and pools only) until `check` holds. */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await read();
  while (!check(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await read();
  }
  return last;
}

const readSnapshot = (name: string) => () =>
  bench.kube.get<SnapshotObject>(VM_SNAPSHOT, bench.namespace, name).catch(() => undefined);
const readRestore = (name: string) => () =>
  bench.kube.get<RestoreObject>(VM_RESTORE, bench.namespace, name).catch(() => undefined);

function settled(phase: string | undefined): boolean {
  return phase === 'Ready' || phase === 'Failed';
}

function restoreSettled(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

async function snapshotUntilSettled(name: string): Promise<SnapshotObject> {
  return (await until(readSnapshot(name), (s) => settled(s?.status?.phase), `${name} settled`))!;
}

async function eventsOf(uid: string): Promise<Array<{ reason?: string; message?: string; type?: string }>> {
  const list = await bench.kube.list<
    KubeObject & { reason?: string; message?: string; type?: string; involvedObject?: { uid?: string } }
  >({ kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: bench.namespace });
  return list.items.filter((event) => event.involvedObject?.uid === uid);
}

describe('a snapshot of one VM', () => {
  it('captures a running VM with its memory: Ready, one entry naming host and libvirt snapshot, the snapshot on the host', async () => {
    await bench.createVm('solo', pool, { runStrategy: 'Manual' });
    await bench.kube.patch(VIRTUAL_MACHINE, bench.namespace, 'solo', {
      metadata: { annotations: { 'virtfleet.io/action': 'start', 'virtfleet.io/action-id': 'first' } },
    });
    await bench.untilVm('solo', isRunning, 'Running');
    const lines: string[] = [];
    await runSnapshot(
      'solo',
      { namespace: bench.namespace, memory: true, name: 'solo-mem', wait: true, timeout: '30' },
      (line) => lines.push(line),
    );
    expect(lines[0]).toBe('vmsnap/solo-mem: asked to capture vm/solo with its memory');
    expect(lines.at(-1)).toMatch(/^vmsnap\/solo-mem: ready: Memory on host snap-[ab]$/);
    const snapshot = (await readSnapshot('solo-mem')())!;
    expect(snapshot.status).toMatchObject({ phase: 'Ready', readyToUse: true, observedGeneration: 1 });
    expect(snapshot.status?.cut).toBeUndefined(); // one VM: no group cut
    const entry = snapshot.status!.vms![0]!;
    const hostDecl = entry.host === A.name ? A : B;
    expect(entry).toMatchObject({
      vm: 'solo',
      uid: uidOf('solo'),
      host: bench.vm('solo')?.status?.host,
      pool,
      snapshotName: `vmsnap-${snapshot.metadata.uid ?? ''}`,
      state: 'Captured',
      memory: true,
      consistency: 'Memory',
    });
    expect(Date.parse(entry.time ?? '')).not.toBeNaN();
    expect(condition(snapshot, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded', observedGeneration: 1 });
    expect(condition(snapshot, 'Reconciling')).toBeUndefined();
    expect(snapshot.metadata.finalizers).toContain('virtfleet.io/host-snapshots');
    const onHost = await bench.hypervisor(hostDecl).snapshot(uidOf('solo'), entry.snapshotName);
    expect(onHost).toMatchObject({ memory: true, domainState: 'running' });
    expect((await bench.hypervisor(hostDecl).state(uidOf('solo'))).state).toBe('running');
    const events = await eventsOf(snapshot.metadata.uid ?? '');
    expect(events.find((e) => e.reason === 'SnapshotCaptured')?.message).toMatch(
      /^captured solo on snap-[ab] \(Memory\)$/,
    );
  });

  it('captures disks only: crash-consistent when no guest agent answers (the test driver has none), and says so', async () => {
    await bench.kube.create(VM_SNAPSHOT, snapshotManifest('solo-disk', { vmName: 'solo' }, false));
    const snapshot = await snapshotUntilSettled('solo-disk');
    expect(snapshot.status?.phase).toBe('Ready');
    expect(snapshot.status?.vms?.[0]).toMatchObject({ memory: false, consistency: 'CrashConsistent' });
  });

  it('restores the VM after it was stopped: the memory snapshot brings it back running, reported per VM', async () => {
    const hostDecl = bench.vm('solo')?.status?.host === A.name ? A : B;
    await bench.hypervisor(hostDecl).destroy(uidOf('solo')); // runStrategy Manual: it stays stopped
    await bench.untilVm('solo', (v) => v.status?.phase === 'Stopped', 'Stopped');
    const lines: string[] = [];
    const name = await runRestore(
      'solo',
      { namespace: bench.namespace, snapshot: 'solo-mem', all: false, wait: true, timeout: '30' },
      (line) => lines.push(line),
    );
    expect(lines.at(-1)).toBe(`vmrestore/${name}: done`);
    const restore = (await readRestore(name)())!;
    expect(restore.status?.phase).toBe('Succeeded');
    expect(restore.status?.vms).toEqual([
      expect.objectContaining({ vm: 'solo', host: hostDecl.name, state: 'Reverted' }),
    ]);
    expect(condition(restore, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect((await bench.hypervisor(hostDecl).state(uidOf('solo'))).state).toBe('running');
    await bench.untilVm('solo', isRunning, 'Running again');
  });

  it('lists the snapshots of the namespace', async () => {
    const lines: string[] = [];
    await runSnapshotList({ namespace: bench.namespace }, (line) => lines.push(line));
    expect(lines[0]).toMatch(/^NAME\s+PHASE\s+READY\s+MEMORY\s+VMS\s+PAUSE-MS\s+AGE$/);
    expect(lines.find((l) => l.startsWith('solo-mem '))).toMatch(
      /^solo-mem\s+Ready\s+true\s+true\s+solo@snap-[ab]\s+-\s+\d+s$/,
    );
  });
});

describe('a group snapshot across hosts', () => {
  it('pauses all three VMs (on two hosts) before capturing any, resumes them after, and records the cut', async () => {
    for (const name of ['g-1', 'g-2', 'g-3'])
      await bench.createVm(name, pool, {
        runStrategy: 'Always',
        ...(name !== 'g-3' ? { placement: { antiAffinityGroup: 'g' } } : {}),
      });
    for (const name of ['g-1', 'g-2', 'g-3'])
      await bench.kube.patch(VIRTUAL_MACHINE, bench.namespace, name, { metadata: { labels: { app: 'group' } } });
    for (const name of ['g-1', 'g-2', 'g-3']) await bench.untilVm(name, isRunning, 'Running');
    expect(new Set(['g-1', 'g-2', 'g-3'].map((n) => bench.vm(n)?.status?.host)).size).toBe(2);

    steps.length = 0;
    await bench.kube.create(
      VM_SNAPSHOT,
      snapshotManifest('group-1', { selector: { matchLabels: { app: 'group' } } }, true),
    );
    const snapshot = await snapshotUntilSettled('group-1');
    expect(snapshot.status?.phase).toBe('Ready');
    const name = `vmsnap-${snapshot.metadata.uid ?? ''}`;
    const mine = steps.filter((s) => s.snapshot === name);
    const index = (step: CutStep['step']) => mine.map((s, i) => (s.step === step ? i : -1)).filter((i) => i >= 0);
    expect(index('pause')).toHaveLength(3);
    expect(index('capture')).toHaveLength(3);
    expect(index('resume')).toHaveLength(3);
    // The barrier: every pause completed before the first capture began; every capture ended before the first resume.
    expect(Math.max(...index('pause'))).toBeLessThan(Math.min(...index('capture')));
    expect(Math.max(...index('captured'))).toBeLessThan(Math.min(...index('resume')));

    expect(snapshot.status?.vms?.map((e) => e.vm)).toEqual(['g-1', 'g-2', 'g-3']);
    for (const entry of snapshot.status!.vms!) {
      expect(entry).toMatchObject({ state: 'Captured', memory: true, consistency: 'Memory' });
      const hostDecl = entry.host === A.name ? A : B;
      // Taken while paused: the barrier held on the host too.
      expect(await bench.hypervisor(hostDecl).snapshot(entry.uid, entry.snapshotName)).toMatchObject({
        domainState: 'paused',
        memory: true,
      });
      expect((await bench.hypervisor(hostDecl).state(entry.uid)).state).toBe('running');
    }
    expect(snapshot.status?.cut?.logicalClock).toBe(1);
    expect(snapshot.status?.cut?.pauseWindowMs).toBeGreaterThanOrEqual(0);
  });

  it('gives a later cut over an overlapping group a greater logical clock', async () => {
    await bench.kube.create(
      VM_SNAPSHOT,
      snapshotManifest(
        'group-2',
        { selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['group'] }] } },
        false,
      ),
    );
    const snapshot = await snapshotUntilSettled('group-2');
    expect(snapshot.status?.phase).toBe('Ready');
    expect(snapshot.status?.cut?.logicalClock).toBe(2);
    expect(snapshot.status?.vms?.every((e) => e.consistency === 'CrashConsistent' && e.memory === false)).toBe(true);
  });

  it('restores the whole group: every VM reverted, then all run again', async () => {
    const lines: string[] = [];
    const name = await runRestore(
      'g-2',
      { namespace: bench.namespace, snapshot: 'group-1', all: true, wait: true, timeout: '30' },
      (line) => lines.push(line),
    );
    const restore = (await readRestore(name)())!;
    expect(restore.status?.phase).toBe('Succeeded');
    expect(restore.status?.vms?.map((e) => `${e.vm}:${e.state}`)).toEqual([
      'g-1:Reverted',
      'g-2:Reverted',
      'g-3:Reverted',
    ]);
    for (const vm of ['g-1', 'g-2', 'g-3']) {
      const hostDecl = bench.vm(vm)?.status?.host === A.name ? A : B;
      expect((await bench.hypervisor(hostDecl).state(uidOf(vm))).state).toBe('running');
    }
  });

  it('deleting the snapshot deletes the libvirt snapshots on both hosts, then the object', async () => {
    const snapshot = (await readSnapshot('group-2')())!;
    const entries = snapshot.status!.vms!;
    await bench.kube.delete(VM_SNAPSHOT, bench.namespace, 'group-2');
    await until(readSnapshot('group-2'), (s) => s === undefined, 'group-2 gone');
    for (const entry of entries) {
      const hostDecl = entry.host === A.name ? A : B;
      expect(await bench.hypervisor(hostDecl).snapshot(entry.uid, entry.snapshotName)).toBeUndefined();
    }
    // The other snapshot of the same VMs stays.
    const kept = (await readSnapshot('group-1')())!.status!.vms![0]!;
    expect(await bench.hypervisor(kept.host === A.name ? A : B).snapshot(kept.uid, kept.snapshotName)).toBeDefined();
    const events = await eventsOf(snapshot.metadata.uid ?? '');
    expect(events.find((e) => e.reason === 'HostSnapshotsDeleted')?.message).toMatch(
      /^deleted the host snapshots of g-1 on snap-[ab], g-2 on snap-[ab] and g-3 on snap-[ab]$/,
    );
  });
});

describe('refusals, each with a reason that names the thing and what to do', () => {
  async function refused(name: string, source: Record<string, unknown>): Promise<SnapshotObject> {
    await bench.kube.create(VM_SNAPSHOT, snapshotManifest(name, source, false));
    const snapshot = await snapshotUntilSettled(name);
    expect(snapshot.status?.phase).toBe('Failed');
    expect(snapshot.status?.readyToUse).toBe(false);
    expect(condition(snapshot, 'Stalled')?.status).toBe('True');
    const events = await eventsOf(snapshot.metadata.uid ?? '');
    expect(events.find((e) => e.reason === 'SnapshotRefused')?.message).toBe(condition(snapshot, 'Ready')?.message);
    return snapshot;
  }

  it('a selector that matches nothing', async () => {
    const snapshot = await refused('nothing', { selector: { matchLabels: { app: 'absent' } } });
    expect(condition(snapshot, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SelectorMatchesNothing',
      message: expect.stringMatching(
        /^spec\.source\.selector \{"matchLabels":\{"app":"absent"\}\} matches no VirtualMachine in namespace .*: fix the selector or label the VMs/,
      ),
    });
  });

  it('a VM name that does not exist', async () => {
    const snapshot = await refused('ghost', { vmName: 'ghost' });
    expect(condition(snapshot, 'Ready')?.reason).toBe('VmNotFound');
    expect(condition(snapshot, 'Ready')?.message).toMatch(/^VirtualMachine ghost does not exist in namespace /);
  });

  it('a raw disk, named', async () => {
    // A raw volume where the VM's disk "data" looks for its volume, on both hosts: the VM takes it as it is.
    const volume = volumeName(domainName(bench.namespace, 'rawvm', '00000000-0000-0000-0000-000000000000'), 'data');
    for (const decl of [A, B]) {
      const host = bench.hypervisor(decl);
      await host.ensureStoragePool({ name: STORAGE_POOL, path: `${bench.hosts.dir}/volumes` });
      await host.createVolume(STORAGE_POOL, { name: volume, format: 'raw', capacityBytes: 64 * 1024 * 1024 });
    }
    await bench.createVm('rawvm', pool, {
      runStrategy: 'Manual',
      disks: [{ name: 'data', size: '64Mi', source: { blank: {} } }],
    });
    await bench.untilVm('rawvm', (v) => condition(v, 'Provisioned')?.status === 'True', 'Provisioned');
    const snapshot = await refused('raw', { vmName: 'rawvm' });
    expect(condition(snapshot, 'Ready')?.reason).toBe('RawDisk');
    expect(condition(snapshot, 'Ready')?.message).toMatch(
      new RegExp(
        `^disk data of VirtualMachine rawvm is raw \\(.*/${volume}\\): snapshots are kept inside qcow2 disks; give the VM a qcow2 disk`,
      ),
    );
  });

  it('a VM on a host that is not ready', async () => {
    await bench.createVm('far', downPool, { runStrategy: 'Manual' });
    await bench.untilVm(
      'far',
      (v) => v.status?.host === C.name && condition(v, 'Provisioned')?.status === 'True',
      'placed',
    );
    await bench.kube.patch(HOST_POOL, undefined, downPool, {
      spec: { hosts: [{ name: C.name, uri: UNREACHABLE_URI, hypervisor: 'kvm' }] },
    });
    await bench.untilPool(downPool, (p) => p.status?.readyHosts === 0, 'host not ready');
    const snapshot = await refused('far', { vmName: 'far' });
    expect(condition(snapshot, 'Ready')?.reason).toBe('HostNotReady');
    expect(condition(snapshot, 'Ready')?.message).toMatch(
      new RegExp(
        `^VirtualMachine far is on host ${C.name} of HostPool ${downPool}, which is not ready \\(.+\\): bring the host back`,
      ),
    );
    // Back, so the VM can be deleted with the bench.
    await bench.kube.patch(HOST_POOL, undefined, downPool, { spec: { hosts: bench.poolSpecHosts([C]) } });
  });

  it('a restore made before its snapshot waits for it, then restores; one of a failed snapshot is refused; one of a VM the snapshot does not hold is refused', async () => {
    // As in one GitOps sync: the restore is applied before its snapshot exists.
    await bench.kube.create(VM_RESTORE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineRestore',
      metadata: { name: 'r-late', namespace: bench.namespace },
      spec: { snapshotName: 'late' },
    } as RestoreObject);
    const waiting = (await until(
      readRestore('r-late'),
      (r) => condition(r ?? ({} as RestoreObject), 'Ready')?.reason === 'SnapshotNotFound',
      'r-late waiting',
    ))!;
    expect(waiting.status?.phase).toBe('Pending');
    expect(condition(waiting, 'Reconciling')?.status).toBe('True');
    expect(condition(waiting, 'Ready')?.message).toBe(
      `waiting for VirtualMachineSnapshot late in namespace ${bench.namespace}, which does not exist (yet): make it, or set spec.snapshotName to an existing snapshot (virtfleet snapshot list)`,
    );
    // Events are written in the background: the status can be there first.
    const reasons = await until(
      async () => (await eventsOf(waiting.metadata.uid ?? '')).map((e) => e.reason),
      (list) => list.includes('WaitingForSnapshot'),
      'the WaitingForSnapshot Event',
    );
    expect(reasons).toContain('WaitingForSnapshot');
    await bench.kube.create(VM_SNAPSHOT, snapshotManifest('late', { vmName: 'solo' }, true));
    const done = (await until(readRestore('r-late'), (r) => restoreSettled(r?.status?.phase), 'r-late settled'))!;
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.vms?.map((e) => `${e.vm}:${e.state}`)).toEqual(['solo:Reverted']);

    await bench.kube.create(VM_RESTORE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineRestore',
      metadata: { name: 'r-failed', namespace: bench.namespace },
      spec: { snapshotName: 'nothing' }, // refused above: selector matches nothing
    } as RestoreObject);
    const failed = (await until(readRestore('r-failed'), (r) => r?.status?.phase === 'Failed', 'r-failed Failed'))!;
    expect(condition(failed, 'Ready')).toMatchObject({
      reason: 'SnapshotNotReady',
      message: 'VirtualMachineSnapshot nothing failed (SelectorMatchesNothing): restore from a Ready snapshot',
    });
    await expect(
      runRestore(
        'solo',
        { namespace: bench.namespace, snapshot: 'group-1', all: false, wait: false, timeout: '5' },
        () => {},
      ),
    ).rejects.toThrow('virtualmachinesnapshot group-1 does not hold vm/solo; it holds g-1, g-2, g-3');
  });
});

describe('rolling checkpoints (VirtualMachineSnapshotSchedule)', () => {
  it('makes a snapshot every interval, keeps the newest `keep` Ready ones, and deletes the oldest from the host', async () => {
    const schedule = {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineSnapshotSchedule',
      metadata: { name: 'solo-rolling', namespace: bench.namespace },
      spec: { source: { vmName: 'solo' }, memory: false, intervalSeconds: 10, keep: 2 },
    } as ScheduleObject;
    const made = await bench.kube.create(VM_SNAPSHOT_SCHEDULE, schedule);
    const ofSchedule = async () =>
      (
        await bench.kube.list<SnapshotObject>(VM_SNAPSHOT, {
          namespace: bench.namespace,
          labelSelector: 'virtfleet.io/snapshot-schedule=solo-rolling',
        })
      ).items;
    const hostOf = (snapshot: SnapshotObject) => (snapshot.status?.vms?.[0]?.host === A.name ? A : B);
    // The first is made at once; the third (two intervals later) prunes the first.
    const first = (
      await until(ofSchedule, (list) => list.some((s) => s.status?.phase === 'Ready'), 'the first snapshot Ready')
    )[0]!;
    expect(first.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'VirtualMachineSnapshotSchedule',
        name: 'solo-rolling',
        uid: made.metadata.uid,
        controller: true,
      }),
    ]);
    const firstEntry = first.status!.vms![0]!;
    expect(await bench.hypervisor(hostOf(first)).snapshot(uidOf('solo'), firstEntry.snapshotName)).toBeDefined();
    const readSchedule = () => bench.kube.get<ScheduleObject>(VM_SNAPSHOT_SCHEDULE, bench.namespace, 'solo-rolling');
    await until(
      ofSchedule,
      (list) =>
        !list.some((s) => s.metadata.name === first.metadata.name) &&
        list.filter((s) => s.status?.phase === 'Ready').length === 2,
      'the first pruned, two kept',
      60_000,
    );
    await until(
      () =>
        bench
          .hypervisor(hostOf(first))
          .snapshot(uidOf('solo'), firstEntry.snapshotName)
          .catch(() => undefined),
      (onHost) => onHost === undefined,
      'the first gone from the host',
    );
    const status = (await readSchedule()).status!;
    expect(status.readySnapshots).toBe(2);
    expect(condition(await readSchedule(), 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(Date.parse(status.nextSnapshotTime ?? '') % 10_000).toBe(0); // slots on multiples of the interval
    const events = await eventsOf(made.metadata.uid ?? '');
    expect(events.filter((e) => e.reason === 'ScheduledSnapshotMade').length).toBeGreaterThanOrEqual(3);
    expect(events.find((e) => e.reason === 'ScheduledSnapshotPruned')?.message).toBe(
      `deleted VirtualMachineSnapshot ${first.metadata.name ?? ''} (older than the newest 2 ready)`,
    );
    // Suspended: no new snapshot, no next time.
    await bench.kube.patch(VM_SNAPSHOT_SCHEDULE, bench.namespace, 'solo-rolling', { spec: { suspend: true } });
    await until(
      readSchedule,
      (s) => s.status?.observedGeneration === 2 && s.status.nextSnapshotTime === undefined,
      'suspended',
    );
    await bench.kube.delete(VM_SNAPSHOT_SCHEDULE, bench.namespace, 'solo-rolling');
  });
});
