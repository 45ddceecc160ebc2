// Point 8 of issue 19: KubeVirt's VirtualMachine (kubevirt.io) also has the short name `vm`. What
// kubectl does when two API groups share a short name, found on a real kube-apiserver of our own
// (not the shared one: a kubevirt.io CRD there would change what `vm` means to other tests), with
// a stand-in CRD for KubeVirt's (group, kind, plural and short names as KubeVirt has them).
// docs/gitops.md "Short names" states the outcome and the decision.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../../src/devstack/controlplane.js';
import { installCrds } from '../../../src/devstack/crds.js';

const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-shortnames-'));
const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
let info: ControlPlaneInfo;

function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      info.binaries.kubectl,
      ['--kubeconfig', info.kubeconfig, ...args],
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const KUBEVIRT_CRD = JSON.stringify({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'virtualmachines.kubevirt.io' },
  spec: {
    group: 'kubevirt.io',
    names: {
      kind: 'VirtualMachine',
      plural: 'virtualmachines',
      singular: 'virtualmachine',
      shortNames: ['vm', 'vms'],
      categories: ['all'],
    },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
});

beforeAll(async () => {
  info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  const created = await kubectl(['apply', '-f', '-'], KUBEVIRT_CRD);
  expect(created.code).toBe(0);
  await kubectl(['wait', '--for=condition=Established', 'crd/virtualmachines.kubevirt.io', '--timeout=30s']);
  const kubevirtVm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'kubevirt-one', namespace: 'default' },
  };
  const virtfleetVm = {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'virtfleet-one', namespace: 'default' },
    spec: { hostPoolRef: { name: 'lab' }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' } },
  };
  for (const object of [kubevirtVm, virtfleetVm]) {
    const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(object));
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
  }
}, 120_000);

afterAll(async () => {
  await plane.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('two API groups with the short name vm', () => {
  it('kubectl get vm picks kubevirt.io (group order: same priority, then by name) and warns about virtfleet.io', async () => {
    const got = await kubectl(['get', 'vm', '-n', 'default', '-o', 'name']);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('virtualmachine.kubevirt.io/kubevirt-one\n');
    expect(got.stderr).toMatch(
      /short name "vm" could also match lower priority resource virtualmachines\.virtfleet\.io/,
    );
  });

  it('the category, the full names and hp/iprof reach virtfleet.io unambiguously', async () => {
    const category = await kubectl(['get', 'virtfleet', '-n', 'default', '-o', 'name']);
    expect({ code: category.code, stdout: category.stdout, stderr: category.stderr }).toEqual({
      code: 0,
      stdout: 'virtualmachine.virtfleet.io/virtfleet-one\n',
      stderr: '',
    });
    for (const resource of [
      'virtualmachines.virtfleet.io',
      'virtualmachine.virtfleet.io',
      'virtualmachines.v1alpha1.virtfleet.io',
    ]) {
      const full = await kubectl(['get', resource, '-n', 'default', '-o', 'name']);
      expect({ resource, code: full.code, stdout: full.stdout, stderr: full.stderr }).toEqual({
        resource,
        code: 0,
        stdout: 'virtualmachine.virtfleet.io/virtfleet-one\n',
        stderr: '',
      });
    }
    const pools = await kubectl(['get', 'hp,iprof', '-A', '-o', 'name']);
    expect({ code: pools.code, stderr: pools.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('a short name qualified by its group (vm.virtfleet.io, vm.kubevirt.io) picks that group, without a warning', async () => {
    for (const [resource, name] of [
      ['vm.virtfleet.io', 'virtualmachine.virtfleet.io/virtfleet-one'],
      ['vm.kubevirt.io', 'virtualmachine.kubevirt.io/kubevirt-one'],
    ] as const) {
      const got = await kubectl(['get', resource, '-n', 'default', '-o', 'name']);
      expect({ resource, code: got.code, stdout: got.stdout, stderr: got.stderr }).toEqual({
        resource,
        code: 0,
        stdout: `${name}\n`,
        stderr: '',
      });
    }
  });
});
