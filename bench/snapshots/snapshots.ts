// Snapshots on real libvirtd hosts with QEMU (test/rig), through the controller (issue 16,
// done-means 6): the time of a snapshot with memory and of its restore for one 256 MiB guest with
// a qcow2 disk, and the pause window of a group snapshot of 10 such guests on 3 hosts (aim under
// 500 ms), disks only and with memory, as status.cut.pauseWindowMs records it. Prints figures; passes or fails nothing.
//
//   npx tsx bench/snapshots/snapshots.ts [--runs 3] [--group 10] [--hosts 3]     # needs root (the rig)
//
// Times are from the create of the VirtualMachineSnapshot (or VirtualMachineRestore) to the
// phase Ready (Succeeded) seen by a watch, so they include the controller's reaction; the
// libvirt calls' own share is in the controller's log.
import { subscribe } from 'node:diagnostics_channel';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { VIRTUAL_MACHINE, HOST_POOL } from '../../src/controllers/resources.js';
import {
  VM_RESTORE,
  VM_SNAPSHOT,
  type RestoreObject,
  type SnapshotObject,
} from '../../src/controllers/snapshot/types.js';
import { CUT_CHANNEL, type CutStep } from '../../src/controllers/snapshot/cut.js';
import type { ResourceType } from '../../src/runtime/kube-client.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from '../../test/e2e/harness.js';
import { guestImage } from '../../test/rig/guest.js';
import { arg } from '../common.js';

const RUNS = arg('runs', 3);
const GROUP = arg('group', 10);
const HOSTS = arg('hosts', 3);
const POOL = 'bench-snap';

const stack: RigController = new RigController({ hosts: HOSTS, tag: 'bench-snap' });
// The cut's steps as the controller (in this process) publishes them, timed here: where the pause
// window goes (pausing, capturing, resuming, and per host the order the captures end in).
const steps: Array<CutStep & { at: number }> = [];
subscribe(CUT_CHANNEL, (message) => steps.push({ ...(message as CutStep), at: performance.now() }));

/** One line per phase of the cut whose libvirt snapshot name is `snapshotName`, in ms from its first pause. */
function cutTrace(snapshotName: string): string[] {
  const mine = steps.filter((step) => step.snapshot === snapshotName);
  const at = (kind: CutStep['step']) => mine.filter((step) => step.step === kind).map((step) => step.at);
  const t0 = Math.min(...at('pause'));
  const rel = (value: number) => (value - t0).toFixed(0);
  const last = (kind: CutStep['step']) => Math.max(...at(kind));
  const byHost = new Map<string, number[]>();
  for (const step of mine.filter((s) => s.step === 'captured')) {
    const host = stack.vm(step.vm)?.status?.host ?? '?';
    byHost.set(host, [...(byHost.get(host) ?? []), step.at]);
  }
  return [
    `    paused: last at ${rel(last('pause'))} ms; captures end: last at ${rel(last('captured'))} ms; resumed: last at ${rel(last('resume'))} ms`,
    ...[...byHost].map(
      ([host, ends]) =>
        `    ${host}: captures end at ${ends
          .sort((a, b) => a - b)
          .map(rel)
          .join(', ')} ms`,
    ),
  ];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Polls the object until `done` holds; returns it and the ms since `start`. */
async function settle<T>(type: ResourceType, name: string, done: (object: T) => boolean, start: number) {
  for (const deadline = Date.now() + 300_000; ;) {
    const object = await stack.client.get<T & { status?: unknown }>(type, NAMESPACE, name);
    if (done(object)) return { object, ms: Date.now() - start };
    if (Date.now() > deadline) throw new Error(`${name}: not settled in 5 min: ${JSON.stringify(object.status)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function snapshot(
  name: string,
  source: Record<string, unknown>,
  memory = true,
): Promise<{ ms: number; object: SnapshotObject }> {
  const start = Date.now();
  await stack.client.create(VM_SNAPSHOT, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineSnapshot',
    metadata: { name, namespace: NAMESPACE },
    spec: { source, memory },
  } as SnapshotObject);
  const { object, ms } = await settle<SnapshotObject>(
    VM_SNAPSHOT,
    name,
    (s) => s.status?.phase === 'Ready' || s.status?.phase === 'Failed',
    start,
  );
  if (object.status?.phase !== 'Ready') throw new Error(`${name} failed: ${JSON.stringify(object.status)}`);
  return { ms, object };
}

async function restore(name: string, snapshotName: string): Promise<number> {
  const start = Date.now();
  await stack.client.create(VM_RESTORE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineRestore',
    metadata: { name, namespace: NAMESPACE },
    spec: { snapshotName },
  } as RestoreObject);
  const { object, ms } = await settle<RestoreObject>(
    VM_RESTORE,
    name,
    (r) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed',
    start,
  );
  if (object.status?.phase !== 'Succeeded') throw new Error(`${name} failed: ${JSON.stringify(object.status)}`);
  return ms;
}

async function main(): Promise<void> {
  await stack.start();
  try {
    const image = await guestImage();
    await stack.client.create(
      HOST_POOL,
      hostPool(POOL, {
        hosts: stack.poolHosts(),
        storage: { pool: `bench-snap-${process.pid}`, path: join(stack.rig.sharedDir, `bench-snap-${process.pid}`) },
        scheduling: { strategy: 'spread', cpuOvercommit: 16, memoryOvercommit: 1 },
      }),
    );
    await stack.until(() => stack.pool(POOL)?.status?.readyHosts === HOSTS, 120_000, 'hosts ready');
    const vm = (name: string, labels: Record<string, string> = {}) => ({
      ...guestVm(name, POOL, image, {
        memory: '256Mi',
        disks: [{ name: 'disk', size: '1Gi', source: { blank: {} } }],
      }),
      metadata: { name, namespace: NAMESPACE, labels },
    });

    // One 256 MiB guest: snapshot with memory, then restore, RUNS times.
    await stack.client.create(VIRTUAL_MACHINE, vm('solo'));
    await stack.until(() => isRunning(stack.vm('solo')), 180_000, 'solo Running');
    const taken: number[] = [];
    const restored: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      taken.push((await snapshot(`solo-${i}`, { vmName: 'solo' })).ms);
      restored.push(await restore(`solo-back-${i}`, `solo-${i}`));
      await stack.until(() => isRunning(stack.vm('solo')), 60_000, 'solo Running again');
    }

    // A group of GROUP guests spread on the hosts: one cut, RUNS times.
    for (let i = 0; i < GROUP; i++) await stack.client.create(VIRTUAL_MACHINE, vm(`g-${i}`, { group: 'bench' }));
    await stack.until(
      () => Array.from({ length: GROUP }, (_, i) => stack.vm(`g-${i}`)).every((v) => isRunning(v)),
      600_000,
      `${GROUP} guests Running`,
    );
    const hosts = new Set(Array.from({ length: GROUP }, (_, i) => stack.vm(`g-${i}`)?.status?.host)).size;
    const group = { selector: { matchLabels: { group: 'bench' } } };
    const cut = {
      disks: { pauses: [] as number[], times: [] as number[] },
      memory: { pauses: [] as number[], times: [] as number[] },
    };
    const traces: string[] = [];
    for (let i = 0; i < RUNS; i++)
      for (const memory of [false, true]) {
        const { ms, object } = await snapshot(`group-${memory ? 'mem' : 'disk'}-${i}`, group, memory);
        const into = memory ? cut.memory : cut.disks;
        into.times.push(ms);
        into.pauses.push(object.status?.cut?.pauseWindowMs ?? NaN);
        traces.push(
          `  ${object.metadata.name}: pause window ${object.status?.cut?.pauseWindowMs} ms`,
          ...cutTrace(object.status?.vms?.[0]?.snapshotName ?? ''),
        );
      }

    const fmt = (values: number[]) =>
      `median ${median(values).toFixed(0)} ms (runs: ${values.map((v) => v.toFixed(0)).join(', ')})`;
    console.log(`snapshots on ${HOSTS} rig hosts (real libvirtd + QEMU), ${RUNS} runs each`);
    console.log(`one 256 MiB guest, 1 GiB qcow2 disk, with memory:`);
    console.log(`  snapshot (create → Ready):       ${fmt(taken)}`);
    console.log(`  restore (create → Succeeded):    ${fmt(restored)}`);
    console.log(`group of ${GROUP} such guests on ${hosts} hosts, one consistent cut:`);
    console.log(`  disks only: pause window (first paused → last resumed) ${fmt(cut.disks.pauses)} (aim < 500 ms)`);
    console.log(`              snapshot (create → Ready) ${fmt(cut.disks.times)}`);
    console.log(`  with memory: pause window ${fmt(cut.memory.pauses)}`);
    console.log(`              snapshot (create → Ready) ${fmt(cut.memory.times)}`);
    console.log(`the cuts' steps (virtfleet:snapshot-cut), ms from the first VM paused:`);
    for (const line of traces) console.log(line);
    console.log(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} (${cpus().length} cores)`,
    );
  } finally {
    for (const type of [VM_RESTORE, VM_SNAPSHOT]) {
      const list = await stack.client.list(type, { namespace: NAMESPACE }).catch(() => ({ items: [] }));
      for (const item of list.items)
        await stack.client.delete(type, NAMESPACE, item.metadata?.name ?? '').catch(() => undefined);
    }
    await stack.deleteVms(120_000);
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
