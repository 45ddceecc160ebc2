// Argo CD health checks (deploy/argocd/resource_customizations/virtfleet.io/<Kind>/health.lua) on
// live objects: VMs, HostPools and InstallProfiles are brought into each state on the real API
// server with the controllers running over libvirt test:/// hosts; hack/argocd-health (gopher-lua,
// as Argo CD embeds it) reads each live object, and the result must be the state's. Each state's
// object is also the Kind's testdata/<file> with the health health_test.yaml expects of it, so the
// checked-in testdata are what the API server really returns (VIRTFLEET_CAPTURE_ARGOCD=1 rewrites
// them from this run).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAction } from '../../../src/cli/vm.js';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { INSTALL_PROFILE } from '../../../src/controllers/installprofile.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { ControllerBench, condition, isRunning, type HostDecl } from '../controllers/fixtures.js';
import { forTestdata, health, healthTests, writeTestdata, type Health, type Kind } from './argocd.js';

const HOST: HostDecl = { name: 'kvm-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';
const CAPTURE = process.env.VIRTFLEET_CAPTURE_ARGOCD === '1';
const ADMIN_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';

const bench = new ControllerBench('argocd', { installProfileResyncMs: 400, installProfileSecretRetryMs: 400 });
let pool = '';
/** The kinds this file covers (argocd-health-kinds.test.ts covers the others). */
const KINDS = ['VirtualMachine', 'HostPool', 'InstallProfile'] as const satisfies readonly Kind[];
const captured = new Map<Kind, Map<string, { object: unknown; health: Health }>>(
  KINDS.map((kind) => [kind, new Map()]),
);

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('fleet', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'the host ready');
});

afterAll(() => bench.close());

const RESOURCE = { VirtualMachine: VIRTUAL_MACHINE, HostPool: HOST_POOL, InstallProfile: INSTALL_PROFILE } as const;
type CoveredKind = keyof typeof RESOURCE;

/** The object as the API server returns it now. */
function live(kind: CoveredKind, name: string): Promise<KubeObject & Record<string, unknown>> {
  return bench.kube.get(RESOURCE[kind], kind === 'HostPool' ? undefined : bench.namespace, name);
}

/** Polls the API server until `check` holds for the object (the informers only cover VMs and pools). */
async function until(
  kind: CoveredKind,
  name: string,
  check: (object: Record<string, unknown>) => boolean,
  what: string,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const object = await live(kind, name);
    if (check(object)) return object;
    if (Date.now() > deadline)
      throw new Error(`${kind} ${name}: ${what} (last status: ${JSON.stringify(object.status)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Reads the object, checks its health against the state's, and against what health_test.yaml
 * expects of the same state's testdata; returns the health.
 */
async function expectHealth(kind: CoveredKind, name: string, file: string, status: Health['status']): Promise<Health> {
  const object = await live(kind, name);
  const got = health(kind, object);
  expect({ file, status: got.status }).toEqual({ file, status });
  expect(got.message).not.toBe('');
  const stable = forTestdata(object, [
    [bench.runId, 'r1'],
    [bench.namespace, 'vms'],
    [bench.hostUri(HOST), 'test:///default'],
  ]);
  const recorded = health(kind, stable);
  expect(recorded.status).toBe(status);
  captured.get(kind)!.set(file, { object: stable, health: recorded });
  if (!CAPTURE) {
    const test = healthTests(kind).tests.find((entry) => entry.inputPath === `testdata/${file}`);
    expect({ file, expected: test?.healthStatus.status }).toEqual({ file, expected: status });
  }
  return got;
}

const cond = (object: Record<string, unknown>, type: string) => condition(object as never, type);
const vmFlags = () => ({ namespace: bench.namespace, wait: true, timeout: '30' });

describe('before the controller has looked (controller stopped)', () => {
  it('a new VM, HostPool and InstallProfile, and a VM whose new generation is not observed yet, are Progressing', async () => {
    await bench.createVm('edited', pool);
    await bench.untilVm('edited', isRunning, 'Running');
    await bench.stopController();
    try {
      await bench.createVm('fresh', pool);
      await bench.kube.create(HOST_POOL, {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'HostPool',
        metadata: { name: bench.poolName('fresh'), labels: { 'virtfleet.io/test-run': bench.runId } },
        spec: { hosts: bench.poolSpecHosts([HOST]) },
      });
      await createProfile('fresh', profileSpec('no-such-secret'));
      await bench.patchVm('edited', { memory: '192Mi' });
      const health = await expectHealth('VirtualMachine', 'fresh', 'progressing_nostatus.yaml', 'Progressing');
      expect(health.message).toBe('Waiting for the controller to report status');
      const edited = await expectHealth('VirtualMachine', 'edited', 'progressing_generation.yaml', 'Progressing');
      expect(edited.message).toBe('Waiting for the controller to observe generation 2');
      await expectHealth('HostPool', bench.poolName('fresh'), 'progressing_nostatus.yaml', 'Progressing');
      await expectHealth('InstallProfile', 'fresh', 'progressing_nostatus.yaml', 'Progressing');
    } finally {
      await bench.startController();
    }
    await bench.kube.delete(HOST_POOL, undefined, bench.poolName('fresh'));
  });
});

describe('VirtualMachine', () => {
  it('Running and Ready: Healthy', async () => {
    await bench.createVm('web', pool);
    await bench.untilVm('web', isRunning, 'Running');
    expect((await expectHealth('VirtualMachine', 'web', 'healthy_running.yaml', 'Healthy')).message).toBe(
      condition(bench.vm('web'), 'Ready')?.message,
    );
  });

  it('stopped on purpose by runStrategy Halted: Healthy (argo-cd#29663), not Progressing or Suspended', async () => {
    await bench.createVm('parked', pool, { runStrategy: 'Halted' });
    await bench.untilVm('parked', (v) => v.status?.phase === 'Stopped' && v.status.observedGeneration === 1, 'Stopped');
    await expectHealth('VirtualMachine', 'parked', 'healthy_halted.yaml', 'Healthy');
  });

  it('stopped by a stop hold (virtfleet vm stop) while runStrategy is Always: Healthy', async () => {
    await bench.createVm('held', pool);
    await bench.untilVm('held', isRunning, 'Running');
    await runAction('stop', 'held', vmFlags(), () => undefined);
    await bench.untilVm('held', (v) => v.status?.phase === 'Stopped', 'Stopped');
    await expectHealth('VirtualMachine', 'held', 'healthy_stop_hold.yaml', 'Healthy');
  });

  it('paused (virtfleet vm pause): Suspended', async () => {
    await bench.createVm('napping', pool);
    await bench.untilVm('napping', isRunning, 'Running');
    await runAction('pause', 'napping', vmFlags(), () => undefined);
    await bench.untilVm('napping', (v) => v.status?.phase === 'Paused', 'Paused');
    await expectHealth('VirtualMachine', 'napping', 'suspended_paused.yaml', 'Suspended');
  });

  it('too big for every host: Degraded, with the reason', async () => {
    await bench.createVm('huge', pool, { memory: '8Gi' });
    await bench.untilVm('huge', (v) => condition(v, 'Scheduled')?.reason === 'Unschedulable', 'Unschedulable');
    const got = await expectHealth('VirtualMachine', 'huge', 'degraded_unschedulable.yaml', 'Degraded');
    expect(got.message).toMatch(/no host fits: kvm-1: insufficient memory/);
  });

  it('in a HostPool that does not exist: Degraded', async () => {
    await bench.createVm('lost', 'no-such-pool');
    await bench.untilVm('lost', (v) => condition(v, 'Scheduled')?.reason === 'HostPoolNotFound', 'HostPoolNotFound');
    await expectHealth('VirtualMachine', 'lost', 'degraded_hostpool_not_found.yaml', 'Degraded');
  });

  it('crash looping: Degraded', async () => {
    await bench.createVm('flaky', pool, { recovery: { restartBackoff: { initialSeconds: 600, maxSeconds: 600 } } });
    for (let crash = 1; crash <= 2; crash++) {
      const vm = await bench.untilVm('flaky', isRunning, 'Running before the crash');
      const before = vm.status?.restarts ?? 0;
      await bench.hypervisor(HOST).destroy(vm.metadata.uid ?? '');
      await bench.untilVm('flaky', (v) => (v.status?.restarts ?? 0) === before + 1, 'the crash counted');
    }
    await bench.untilVm('flaky', (v) => v.status?.phase === 'CrashLoopBackOff', 'CrashLoopBackOff');
    await expectHealth('VirtualMachine', 'flaky', 'degraded_crashloop.yaml', 'Degraded');
  });

  it('being deleted while its host does not answer: Progressing', async () => {
    // The VM's domain cannot be removed while the host is away: the finalizer stays, and so does the VM.
    const away = await bench.createPool('away', [{ ...HOST, name: 'away-1' }]);
    await bench.untilPool(away, (p) => p.status?.readyHosts === 1, 'away-1 ready');
    await bench.createVm('leaving', away);
    await bench.untilVm('leaving', isRunning, 'Running');
    await bench.kube.patch(HOST_POOL, undefined, away, {
      spec: { hosts: [{ name: 'away-1', uri: UNREACHABLE_URI }] },
    });
    await bench.untilPool(away, (p) => p.status?.hosts?.[0]?.ready === false, 'away-1 not ready');
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'leaving');
    await bench.untilVm('leaving', (v) => v.status?.phase === 'Terminating', 'Terminating');
    await expectHealth('VirtualMachine', 'leaving', 'progressing_terminating.yaml', 'Progressing');
    // The host answers again, so the VM can go.
    await bench.kube.patch(HOST_POOL, undefined, away, {
      spec: { hosts: bench.poolSpecHosts([{ ...HOST, name: 'away-1' }]) },
    });
  });
});

describe('HostPool', () => {
  it('every host ready: Healthy', async () => {
    await expectHealth('HostPool', pool, 'healthy_ready.yaml', 'Healthy');
  });

  it('one host of two does not answer: Degraded', async () => {
    const half = await bench.createPool('half', [{ ...HOST, name: 'good-1' }]);
    await bench.kube.patch(HOST_POOL, undefined, half, {
      spec: {
        hosts: [...bench.poolSpecHosts([{ ...HOST, name: 'good-1' }]), { name: 'gone-1', uri: UNREACHABLE_URI }],
      },
    });
    await until(
      'HostPool',
      half,
      (p) =>
        cond(p, 'Degraded')?.status === 'True' &&
        cond(p, 'Ready')?.status === 'True' &&
        (p.status as { hosts?: { name: string; reason?: string }[] }).hosts?.some(
          (h) => h.name === 'gone-1' && h.reason !== 'Connecting',
        ) === true,
      'gone-1 not ready, good-1 ready',
    );
    await expectHealth('HostPool', half, 'degraded_host_not_ready.yaml', 'Degraded');
  });

  it('no host answers: Degraded', async () => {
    const dark = bench.poolName('dark');
    await bench.kube.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: dark, labels: { 'virtfleet.io/test-run': bench.runId } },
      spec: { hosts: [{ name: 'gone-1', uri: UNREACHABLE_URI }] },
    });
    await until(
      'HostPool',
      dark,
      (p) =>
        cond(p, 'Ready')?.reason === 'NoHostReady' &&
        (p.status as { hosts?: { reason?: string }[] }).hosts?.[0]?.reason !== 'Connecting',
      'no host ready',
    );
    await expectHealth('HostPool', dark, 'degraded_no_host_ready.yaml', 'Degraded');
  });
});

function profileSpec(secret: string): Record<string, unknown> {
  return {
    os: { family: 'rhel', name: 'Rocky', version: '9.4' },
    installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    rootPassword: { secretKeyRef: { name: secret, key: 'root-password' } },
    users: [{ name: 'admin', groups: ['wheel'], passwordSecretRef: { name: secret, key: 'admin-hash' } }],
  };
}

async function createProfile(name: string, spec: Record<string, unknown>): Promise<void> {
  await bench.kube.create(INSTALL_PROFILE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'InstallProfile',
    metadata: { name, namespace: bench.namespace },
    spec,
  } as never);
}

async function createSecret(name: string, data: Record<string, string>): Promise<void> {
  await bench.kube.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: bench.namespace },
    type: 'Opaque',
    stringData: data,
  } as never);
}

describe('InstallProfile', () => {
  it('renders: Healthy', async () => {
    await createSecret('rocky-passwords', { 'root-password': 'root pw', 'admin-hash': ADMIN_HASH });
    await createProfile('rocky', profileSpec('rocky-passwords'));
    await until('InstallProfile', 'rocky', (p) => cond(p, 'Valid')?.status === 'True', 'Valid');
    await expectHealth('InstallProfile', 'rocky', 'healthy_valid.yaml', 'Healthy');
  });

  it('its Secret does not exist yet: Progressing (it may come in the same sync)', async () => {
    await createProfile('waiting', profileSpec('later-passwords'));
    await until('InstallProfile', 'waiting', (p) => cond(p, 'Valid')?.reason === 'SecretNotFound', 'SecretNotFound');
    await expectHealth('InstallProfile', 'waiting', 'progressing_secret_not_found.yaml', 'Progressing');
  });

  it('its Secret lacks a key: Degraded, naming the Secret and key', async () => {
    await createSecret('half-passwords', { 'root-password': 'root pw' });
    await createProfile('broken', profileSpec('half-passwords'));
    await until('InstallProfile', 'broken', (p) => cond(p, 'Valid')?.reason === 'InvalidSecret', 'InvalidSecret');
    const got = await expectHealth('InstallProfile', 'broken', 'degraded_invalid_secret.yaml', 'Degraded');
    expect(got.message).toContain('half-passwords');
    expect(got.message).not.toContain('root pw');
  });
});

describe('testdata', () => {
  it('every case of every health_test.yaml is a state this file reached', () => {
    // VIRTFLEET_CAPTURE_ARGOCD=1: this run's objects become the testdata.
    if (CAPTURE) for (const kind of KINDS) writeTestdata(kind, captured.get(kind)!);
    for (const kind of KINDS) {
      const files = healthTests(kind).tests.map((test) => test.inputPath.replace(/^testdata\//, ''));
      expect({ kind, files: files.sort() }).toEqual({ kind, files: [...captured.get(kind)!.keys()].sort() });
    }
  });
});
