// What Flux and kubectl-based waits make of our objects: live objects from the real API server,
// put through kstatus itself (sigs.k8s.io/cli-utils pkg/kstatus/status, built as hack/kstatus),
// in each state. A VM that runs, or is stopped as its runStrategy or a hold asks, is Current; one
// starting is InProgress; one no host can take is Failed (Stalled). An InstallProfile that is
// valid is Current, an invalid one Failed. A ready HostPool is Current.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { INSTALL_PROFILE, type ProfileObject } from '../../../src/controllers/installprofile.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../../src/controllers/resources.js';
import { kstatusOf } from '../../harness/kstatus.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'ks-1', cpus: 4, memoryGiB: 2, hypervisor: 'kvm' };
const ADMIN_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';

const bench = new ControllerBench('kstatus', { installProfileResyncMs: 400, installProfileSecretRetryMs: 400 });
let pool = '';
/** Every version of each VM the watch delivered, oldest first. */
const seen = new Map<string, VmObject[]>();

beforeAll(async () => {
  await bench.start();
  bench.vms.on((event) => {
    if (event.type === 'delete') return;
    const name = event.object.metadata.name ?? '';
    seen.set(name, [...(seen.get(name) ?? []), structuredClone(event.object)]);
  });
  pool = await bench.createPool('ks', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'ks-1 ready');
});

afterAll(() => bench.close());

/** The object as the API server has it now (not the test's cache). */
const live = (name: string) => bench.kube.get<VmObject>(VIRTUAL_MACHINE, bench.namespace, name);

describe('kstatus of a VirtualMachine', () => {
  it('is InProgress while it starts (Reconciling=True), then Current once Ready', async () => {
    await bench.createVm('web', pool);
    await bench.untilVm('web', (vm) => isRunning(vm) && !condition(vm, 'Reconciling'), 'Running, nothing under way');
    // The first status the controller wrote: placed, the domain not made yet.
    const starting = (seen.get('web') ?? []).find((vm) => vm.status?.conditions !== undefined);
    expect(starting).toBeDefined();
    expect(condition(starting, 'Ready')?.status).not.toBe('True');
    expect(condition(starting, 'Reconciling')).toMatchObject({
      status: 'True',
      observedGeneration: starting!.metadata.generation,
    });
    expect(await kstatusOf(starting!)).toMatchObject({ kind: 'VirtualMachine', name: 'web', status: 'InProgress' });

    const running = await live('web');
    expect(condition(running, 'Ready')).toMatchObject({ status: 'True', reason: 'Running' });
    expect(running.status?.observedGeneration).toBe(running.metadata.generation);
    expect(await kstatusOf(running)).toMatchObject({ status: 'Current', message: 'Resource is Ready' });
  });

  it('is Current when stopped on purpose: runStrategy Halted, Manual, and a `vm stop` hold', async () => {
    await bench.createVm('halted', pool, { runStrategy: 'Halted' });
    await bench.createVm('manual', pool, { runStrategy: 'Manual' });
    const stopped = (vm: VmObject) =>
      vm.status?.phase === 'Stopped' && condition(vm, 'Ready')?.observedGeneration === vm.metadata.generation;
    await bench.untilVm('halted', stopped, 'Stopped');
    await bench.untilVm('manual', stopped, 'Stopped');
    await bench.kube.patch(VIRTUAL_MACHINE, bench.namespace, 'web', {
      metadata: { annotations: { 'virtfleet.io/action': 'stop', 'virtfleet.io/action-id': 'ks-stop' } },
    });
    await bench.untilVm('web', (vm) => vm.status?.phase === 'Stopped', 'Stopped by the hold');
    for (const name of ['halted', 'manual', 'web']) {
      const vm = await live(name);
      expect(condition(vm, 'Ready')).toMatchObject({ status: 'True' });
      expect(condition(vm, 'Reconciling')).toBeUndefined();
      expect(condition(vm, 'Stalled')).toBeUndefined();
      expect(await kstatusOf(vm)).toMatchObject({ name, status: 'Current' });
    }
    expect(condition(await live('web'), 'Ready')?.reason).toBe('StoppedByUser');
  });

  it('is Failed when no host can take it (Stalled=True), and InProgress again once the spec changes', async () => {
    await bench.createVm('huge', pool, { memory: '64Gi' });
    await bench.untilVm('huge', (vm) => condition(vm, 'Stalled')?.status === 'True', 'Stalled');
    const huge = await live('huge');
    expect(condition(huge, 'Stalled')).toMatchObject({
      reason: 'Unschedulable',
      observedGeneration: huge.metadata.generation,
    });
    expect(condition(huge, 'Stalled')?.message).toMatch(/^Scheduled: no host fits: ks-1: insufficient memory/);
    const result = await kstatusOf(huge);
    expect(result).toMatchObject({ status: 'Failed' });
    expect(result.message).toMatch(/insufficient memory/);

    // A new generation not yet seen by the controller: in progress, whatever the conditions say.
    const patched = await bench.patchVm('huge', { memory: '256Mi' });
    expect(await kstatusOf({ ...patched, status: huge.status })).toMatchObject({ status: 'InProgress' });
    await bench.untilVm('huge', (vm) => isRunning(vm) && !condition(vm, 'Stalled'), 'Running once it fits');
    expect(await kstatusOf(await live('huge'))).toMatchObject({ status: 'Current' });
  });
});

describe('kstatus of an InstallProfile', () => {
  const spec = (key: string) => ({
    os: { family: 'rhel', name: 'Rocky', version: '9.4' },
    installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    rootPassword: { secretKeyRef: { name: 'ks-secret', key } },
    packages: ['@^minimal-environment'],
  });
  const profile = (name: string) => bench.kube.get<ProfileObject>(INSTALL_PROFILE, bench.namespace, name);
  const checked = async (name: string) => {
    for (let i = 0; ; i++) {
      const object = await profile(name);
      const ready = condition(object, 'Ready');
      if (ready && ready.observedGeneration === object.metadata.generation) return object;
      if (i > 300) throw new Error(`${name} not checked: ${JSON.stringify(object.status)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  beforeAll(async () => {
    await bench.kube.create(SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'ks-secret', namespace: bench.namespace },
      type: 'Opaque',
      stringData: { 'root-hash': ADMIN_HASH },
    } as never);
  });

  it('is Current when valid (Ready=True beside Valid=True)', async () => {
    await bench.kube.create(INSTALL_PROFILE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'InstallProfile',
      metadata: { name: 'good', namespace: bench.namespace },
      spec: spec('root-hash'),
    } as never);
    const good = await checked('good');
    expect(condition(good, 'Valid')).toMatchObject({ status: 'True' });
    expect(condition(good, 'Ready')).toMatchObject({ status: 'True', reason: 'Rendered' });
    expect(await kstatusOf(good)).toMatchObject({ kind: 'InstallProfile', name: 'good', status: 'Current' });
  });

  it('is Failed when invalid (Stalled=True naming the field)', async () => {
    // Admitted by the API server, refused by the controller: the Secret has no such key.
    await bench.kube.create(INSTALL_PROFILE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'InstallProfile',
      metadata: { name: 'bad', namespace: bench.namespace },
      spec: spec('no-such-key'),
    } as never);
    const bad = await checked('bad');
    expect(condition(bad, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSecret' });
    expect(condition(bad, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSecret' });
    const result = await kstatusOf(bad);
    expect(result).toMatchObject({ status: 'Failed' });
    expect(result.message).toMatch(/spec\.rootPassword/);
  });
});

describe('kstatus of a HostPool', () => {
  it('is Current when ready', async () => {
    const object = await bench.kube.get<PoolObject>(HOST_POOL, undefined, pool);
    expect(condition(object, 'Ready')).toMatchObject({ status: 'True' });
    expect(await kstatusOf(object)).toMatchObject({ kind: 'HostPool', name: pool, status: 'Current' });
  });
});
