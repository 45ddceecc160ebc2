// What Argo CD and Flux see after the controller has worked on objects from Git: a VM
// repository (HostPool, InstallProfile and its Secret, VirtualMachine) applied as Argo CD syncs it,
// by server-side apply under its field manager (argocd-controller) or by client-side apply (its
// default), then reconciled by the controller (placement, finalizer, status, defaults the API
// server filled in). A diff of the same files must then be empty in both modes, which is why
// docs/gitops.md needs no ignoreDifferences.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { kubectl } from '../../harness/kube.js';
import { ControllerBench, condition, isRunning, type HostDecl } from '../controllers/fixtures.js';

const HOST: HostDecl = { name: 'kvm-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const ADMIN_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';

const bench = new ControllerBench('gitops', { installProfileResyncMs: 400, installProfileSecretRetryMs: 400 });
let dir = '';

beforeAll(async () => {
  await bench.start();
  dir = mkdtempSync(join(tmpdir(), 'vm-repo-'));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await bench.close();
});

/** The repository's objects, their names ending in `suffix`. */
function repository(suffix: string): string {
  const pool = bench.poolName(`git${suffix}`);
  const objects = [
    {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: pool, labels: { 'virtfleet.io/test-run': bench.runId } },
      spec: { hosts: bench.poolSpecHosts([HOST]) },
    },
    {
      // As data, not stringData: stringData is never stored, so no diff could ever match it.
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `passwords${suffix}`, namespace: bench.namespace },
      type: 'Opaque',
      data: {
        'root-password': Buffer.from('root pw').toString('base64'),
        'admin-hash': Buffer.from(ADMIN_HASH).toString('base64'),
      },
    },
    {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'InstallProfile',
      metadata: { name: `rocky${suffix}`, namespace: bench.namespace },
      spec: {
        os: { family: 'rhel', name: 'Rocky', version: '9.4' },
        installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
        rootPassword: { secretKeyRef: { name: `passwords${suffix}`, key: 'root-password' } },
        users: [
          { name: 'admin', groups: ['wheel'], passwordSecretRef: { name: `passwords${suffix}`, key: 'admin-hash' } },
        ],
      },
    },
    {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: `web${suffix}`, namespace: bench.namespace, labels: { app: 'web' } },
      spec: {
        hostPoolRef: { name: pool },
        memory: '128Mi',
        kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
      },
    },
    {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: `parked${suffix}`, namespace: bench.namespace },
      spec: {
        hostPoolRef: { name: pool },
        runStrategy: 'Halted',
        memory: '128Mi',
        kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
      },
    },
  ];
  const file = join(dir, `repo${suffix}.yaml`);
  writeFileSync(file, objects.map((object) => stringify(object)).join('---\n'));
  return file;
}

async function reconciled(suffix: string): Promise<void> {
  await bench.untilVm(`web${suffix}`, isRunning, 'Running');
  await bench.untilVm(
    `parked${suffix}`,
    (vm) => vm.status?.phase === 'Stopped' && condition(vm, 'Ready')?.observedGeneration === vm.metadata.generation,
    'Stopped',
  );
  await bench.untilPool(bench.poolName(`git${suffix}`), (p) => p.status?.readyHosts === 1, 'the host ready');
}

describe('a VM repository synced as Argo CD does, then reconciled', () => {
  it('server-side apply (ServerSideApply=true): kubectl diff --server-side is empty', async () => {
    const file = repository('-ssa');
    const manager = ['--server-side', '--field-manager=argocd-controller'];
    const applied = await kubectl(['apply', ...manager, '-f', file]);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    await reconciled('-ssa');
    const diff = await kubectl(['diff', ...manager, '-f', file]);
    expect({ code: diff.code, stdout: diff.stdout, stderr: diff.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('client-side apply (the default): kubectl diff is empty', async () => {
    const file = repository('-csa');
    const applied = await kubectl(['apply', '-f', file]);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    await reconciled('-csa');
    const diff = await kubectl(['diff', '-f', file]);
    expect({ code: diff.code, stdout: diff.stdout, stderr: diff.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('a change in Git shows in the diff (the diffs above could fail)', async () => {
    const file = repository('-ssa');
    const changed = join(dir, 'changed.yaml');
    writeFileSync(changed, readFileSync(file, 'utf8').replace('memory: 128Mi', 'memory: 256Mi'));
    const diff = await kubectl(['diff', '--server-side', '--field-manager=argocd-controller', '-f', changed]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^\+ {2}memory: 256Mi$/m);
  });
});
