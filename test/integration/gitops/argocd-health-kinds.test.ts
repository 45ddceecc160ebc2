// Argo CD health checks of the kinds that came after the first three (argocd-health.test.ts covers
// VirtualMachine, HostPool and InstallProfile): VirtualMachineSnapshot, VirtualMachineRestore and
// VirtualMachineImage, brought into each state on the real API server with the controllers
// running over libvirt test:/// hosts, and read by hack/argocd-health (gopher-lua, as Argo CD
// embeds it) and by the kstatus checker (hack/kstatus) as Flux reads them. Each state's object is the Kind's testdata/<file> (VIRTFLEET_CAPTURE_ARGOCD=1
// rewrites them from this run), as in argocd-health.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VIRTUAL_MACHINE_IMAGE } from '../../../src/controllers/image/resource.js';
import { VM_RESTORE, VM_SNAPSHOT, VM_SNAPSHOT_SCHEDULE } from '../../../src/controllers/snapshot/types.js';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { VIRTUAL_MACHINE_TEMPLATE } from '../../../src/controllers/template/resource.js';
import type { KubeObject, ResourceType } from '../../../src/runtime/kube-client.js';
import { kstatusOf } from '../../harness/kstatus.js';
import { ControllerBench, isRunning, type HostDecl } from '../controllers/fixtures.js';
import { forTestdata, health, healthTests, writeTestdata, type Health, type Kind } from './argocd.js';

const HOST: HostDecl = { name: 'kvm-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const STORAGE_POOL = 'vf-argocd';
const CAPTURE = process.env.VIRTFLEET_CAPTURE_ARGOCD === '1';
/** The kstatus status each Argo CD health goes with. */
const KSTATUS: Partial<Record<Health['status'], string>> = {
  Healthy: 'Current',
  Progressing: 'InProgress',
  Degraded: 'Failed',
};

const bench = new ControllerBench('argocd-kinds', { hostRetryMs: 1_000, imageProgressIntervalMs: 500 });
let pool = '';

const RESOURCE = {
  VirtualMachineSnapshot: VM_SNAPSHOT,
  VirtualMachineRestore: VM_RESTORE,
  VirtualMachineImage: VIRTUAL_MACHINE_IMAGE,
  VirtualMachineSnapshotSchedule: VM_SNAPSHOT_SCHEDULE,
  VirtualMachineTemplate: VIRTUAL_MACHINE_TEMPLATE,
} as const satisfies Partial<Record<Kind, ResourceType>>;
type CoveredKind = keyof typeof RESOURCE;
const KINDS = Object.keys(RESOURCE) as CoveredKind[];
const captured = new Map<Kind, Map<string, { object: unknown; health: Health }>>(
  KINDS.map((kind) => [kind, new Map()]),
);

beforeAll(async () => {
  await bench.start();
  const storage = { pool: STORAGE_POOL, path: `${bench.hosts.dir}/images` };
  pool = await bench.createPool('fleet', [HOST], { storage });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'the host ready');
  // The volume an image is made from, as an administrator would make it.
  const hypervisor = bench.hypervisor(HOST);
  await hypervisor.ensureStoragePool({ name: STORAGE_POOL, path: storage.path });
  await hypervisor.createVolume(STORAGE_POOL, { name: 'golden', format: 'qcow2', capacityBytes: 64 * 2 ** 20 });
  await bench.createVm('solo', pool);
});

afterAll(async () => {
  for (const kind of KINDS) {
    const list = await bench.kube.list<KubeObject>(RESOURCE[kind], { namespace: bench.namespace });
    for (const object of list.items)
      await bench.kube.delete(RESOURCE[kind], bench.namespace, object.metadata?.name ?? '').catch(() => undefined);
  }
  await bench.close();
});

function create(kind: CoveredKind, name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return bench.kube.create(RESOURCE[kind], {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind,
    metadata: { name, namespace: bench.namespace },
    spec,
  });
}

function live(kind: CoveredKind, name: string): Promise<KubeObject & Record<string, unknown>> {
  return bench.kube.get(RESOURCE[kind], bench.namespace, name);
}

/** Polls the API server until the object's status.phase is `phase` (no informer covers these kinds here). */
async function untilPhase(kind: CoveredKind, name: string, phase: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const object = await live(kind, name);
    if ((object.status as { phase?: string } | undefined)?.phase === phase) return;
    if (Date.now() > deadline)
      throw new Error(`${kind} ${name}: phase ${phase} not reached (last status: ${JSON.stringify(object.status)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function untilCondition(kind: CoveredKind, name: string, status: string, reason?: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const object = await live(kind, name);
    const ready = (
      object.status as { conditions?: { type: string; status: string; reason: string }[] } | undefined
    )?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === status && (reason === undefined || ready.reason === reason)) return;
    if (Date.now() > deadline)
      throw new Error(`${kind} ${name}: Ready ${status} not reached (last status: ${JSON.stringify(object.status)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Reads the object, checks its health against the state's and against health_test.yaml's. */
async function expectHealth(kind: CoveredKind, name: string, file: string, status: Health['status']): Promise<Health> {
  const object = await live(kind, name);
  const got = health(kind, object);
  expect({ file, status: got.status }).toEqual({ file, status });
  expect(got.message).not.toBe('');
  const stable = forTestdata(object, [
    [bench.runId, 'r1'],
    [bench.namespace, 'vms'],
    [bench.hostUri(HOST), 'test:///default'],
    [bench.hosts.dir, '/var/lib/virtfleet/test'],
  ]);
  // What Flux and kubectl-based waits compute (sigs.k8s.io/cli-utils kstatus) agrees, once the
  // controller has written status (without any, kstatus cannot tell and says Current).
  if (object.status !== undefined)
    expect({ file, kstatus: (await kstatusOf(object)).status }).toEqual({ file, kstatus: KSTATUS[status] });
  const recorded = health(kind, stable);
  expect(recorded.status).toBe(status);
  captured.get(kind)!.set(file, { object: stable, health: recorded });
  if (!CAPTURE) {
    const test = healthTests(kind).tests.find((entry) => entry.inputPath === `testdata/${file}`);
    expect({ file, expected: test?.healthStatus.status }).toEqual({ file, expected: status });
  }
  return got;
}

describe('before the controller has looked (controller stopped)', () => {
  it('a new snapshot, restore, image, snapshot schedule and template are Progressing', async () => {
    await bench.untilVm('solo', isRunning, 'Running');
    await bench.stopController();
    try {
      await create('VirtualMachineSnapshot', 'fresh', { source: { vmName: 'solo' }, memory: false });
      await create('VirtualMachineRestore', 'fresh', { snapshotName: 'fresh' });
      await create('VirtualMachineImage', 'fresh', {
        hostPoolRef: { name: pool },
        source: { volume: { name: 'golden' } },
      });
      await create('VirtualMachineSnapshotSchedule', 'fresh', {
        source: { vmName: 'solo' },
        memory: false,
        intervalSeconds: 3600,
        keep: 1,
      });
      await create('VirtualMachineTemplate', 'fresh', { memory: '128Mi' });
      for (const kind of KINDS) {
        const got = await expectHealth(kind, 'fresh', 'progressing_nostatus.yaml', 'Progressing');
        expect(got.message).toBe('Waiting for the controller to report status');
      }
    } finally {
      await bench.startController();
    }
    for (const kind of KINDS) await bench.kube.delete(RESOURCE[kind], bench.namespace, 'fresh');
  });
});

describe('VirtualMachineSnapshot', () => {
  it('captured: Healthy', async () => {
    await create('VirtualMachineSnapshot', 'solo-snap', { source: { vmName: 'solo' }, memory: true });
    await untilPhase('VirtualMachineSnapshot', 'solo-snap', 'Ready');
    await expectHealth('VirtualMachineSnapshot', 'solo-snap', 'healthy_ready.yaml', 'Healthy');
  });

  it('a selector that matches no VM: Degraded, saying so', async () => {
    await create('VirtualMachineSnapshot', 'nobody', {
      source: { selector: { matchLabels: { app: 'nobody' } } },
      memory: false,
    });
    await untilPhase('VirtualMachineSnapshot', 'nobody', 'Failed');
    const got = await expectHealth(
      'VirtualMachineSnapshot',
      'nobody',
      'degraded_selector_matches_nothing.yaml',
      'Degraded',
    );
    expect(got.message).toMatch(/selector/);
  });
});

describe('VirtualMachineRestore', () => {
  it('every VM reverted: Healthy', async () => {
    await create('VirtualMachineRestore', 'back', { snapshotName: 'solo-snap' });
    await untilPhase('VirtualMachineRestore', 'back', 'Succeeded');
    await expectHealth('VirtualMachineRestore', 'back', 'healthy_succeeded.yaml', 'Healthy');
  });

  it('a snapshot that does not exist yet: Progressing, waiting for it', async () => {
    await create('VirtualMachineRestore', 'from-later', { snapshotName: 'no-such-snapshot' });
    await untilPhase('VirtualMachineRestore', 'from-later', 'Pending');
    const got = await expectHealth(
      'VirtualMachineRestore',
      'from-later',
      'progressing_waiting_for_snapshot.yaml',
      'Progressing',
    );
    expect(got.message).toContain('no-such-snapshot');
  });

  it('a snapshot that failed: Degraded, naming it', async () => {
    await create('VirtualMachineRestore', 'from-failed', { snapshotName: 'nobody' });
    await untilPhase('VirtualMachineRestore', 'from-failed', 'Failed');
    const got = await expectHealth('VirtualMachineRestore', 'from-failed', 'degraded_snapshot_failed.yaml', 'Degraded');
    expect(got.message).toContain('nobody');
  });
});

describe('VirtualMachineSnapshotSchedule', () => {
  it('its newest snapshot Ready: Healthy', async () => {
    await create('VirtualMachineSnapshotSchedule', 'solo-rolling', {
      source: { vmName: 'solo' },
      memory: false,
      intervalSeconds: 3600,
      keep: 2,
    });
    await untilCondition('VirtualMachineSnapshotSchedule', 'solo-rolling', 'True');
    await expectHealth('VirtualMachineSnapshotSchedule', 'solo-rolling', 'healthy_ready.yaml', 'Healthy');
  });

  it('its newest snapshot failed: Degraded, saying why', async () => {
    await create('VirtualMachineSnapshotSchedule', 'nobody-rolling', {
      source: { vmName: 'nobody' },
      memory: false,
      intervalSeconds: 3600,
      keep: 2,
    });
    await untilCondition('VirtualMachineSnapshotSchedule', 'nobody-rolling', 'False', 'VmNotFound');
    const got = await expectHealth(
      'VirtualMachineSnapshotSchedule',
      'nobody-rolling',
      'degraded_snapshot_failed.yaml',
      'Degraded',
    );
    expect(got.message).toContain('nobody');
  });
});

describe('VirtualMachineImage', () => {
  it('on every host of its pool: Healthy', async () => {
    await create('VirtualMachineImage', 'golden', {
      hostPoolRef: { name: pool },
      source: { volume: { name: 'golden' } },
    });
    await untilPhase('VirtualMachineImage', 'golden', 'Ready');
    await expectHealth('VirtualMachineImage', 'golden', 'healthy_ready.yaml', 'Healthy');
  });

  it('a source volume that does not exist: Degraded, naming it', async () => {
    await create('VirtualMachineImage', 'missing', {
      hostPoolRef: { name: pool },
      source: { volume: { name: 'no-such-volume' } },
    });
    await untilPhase('VirtualMachineImage', 'missing', 'Failed');
    const got = await expectHealth(
      'VirtualMachineImage',
      'missing',
      'degraded_source_volume_not_found.yaml',
      'Degraded',
    );
    expect(got.message).toContain('no-such-volume');
  });
});

describe('VirtualMachineTemplate', () => {
  it('seen by the controller, named by a VM: Healthy, saying how many VMs use it', async () => {
    await create('VirtualMachineTemplate', 'sized', { memory: '128Mi', cpu: { cores: 2 } });
    await bench.createVm('stamped', pool, { memory: undefined, templateRef: { name: 'sized' } });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = (await live('VirtualMachineTemplate', 'sized')).status as { usedByCount?: number } | undefined;
      if (status?.usedByCount === 1) break;
      if (Date.now() > deadline)
        throw new Error(`template sized: usedByCount 1 not reached (${JSON.stringify(status)})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const got = await expectHealth('VirtualMachineTemplate', 'sized', 'healthy_used.yaml', 'Healthy');
    expect(got.message).toBe('used by 1 VirtualMachine');
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'stamped');
  });

  it('a VM that cannot take it: Degraded, naming the VM and the field', async () => {
    const root = { name: 'root', size: '64Mi', bootOrder: 1, source: { blank: {} } };
    await create('VirtualMachineTemplate', 'boots', { memory: '128Mi', disks: [root] });
    await bench.createVm('clash', pool, {
      templateRef: { name: 'boots' },
      disks: [{ ...root, name: 'data' }],
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = (await live('VirtualMachineTemplate', 'boots')).status as
        { conditions?: { type: string; status: string }[] } | undefined;
      if (status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`template boots: Stalled not reached (${JSON.stringify(status)})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const got = await expectHealth('VirtualMachineTemplate', 'boots', 'degraded_vm_refused.yaml', 'Degraded');
    expect(got.message).toMatch(/^1 of 1 VirtualMachines cannot take it; VM clash: .*bootOrder values must be unique/);
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'clash');
  });
});

describe('testdata', () => {
  it('every case of every health_test.yaml is a state this file reached', () => {
    // VIRTFLEET_CAPTURE_ARGOCD=1: this run's objects become the testdata.
    if (CAPTURE) for (const kind of KINDS) writeTestdata(kind, captured.get(kind)!, 'argocd-health-kinds.test.ts');
    for (const kind of KINDS) {
      const files = healthTests(kind).tests.map((test) => test.inputPath.replace(/^testdata\//, ''));
      expect({ kind, files: files.sort() }).toEqual({ kind, files: [...captured.get(kind)!.keys()].sort() });
    }
  });
});
