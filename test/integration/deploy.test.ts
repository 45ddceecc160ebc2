// deploy/ against the real API server: it applies (all of it in a server-side dry run; for real
// without the finalizer policy's binding, which would reach every suite of the tier), and the controller's
// ServiceAccount can do what the controller needs and nothing broader; downloads and uploads
// are staged on volumes sized for images, not in the small memory-backed /tmp.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { byteCount } from '../../src/cli/api.js';
import { STAGING_DIR_ENV } from '../../src/controllers/staging.js';
import { kubectl } from '../harness/kube.js';

const SA = 'system:serviceaccount:virtfleet-system:virtfleet-controller';

async function canI(...args: string[]): Promise<boolean> {
  const result = await kubectl(['auth', 'can-i', '--as', SA, ...args]);
  if (result.code !== 0 && result.stdout.trim() !== 'no')
    throw new Error(`kubectl auth can-i ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim() === 'yes';
}

beforeAll(async () => {
  // A server-side dry run cannot create the namespace its objects go into.
  await kubectl(['create', 'namespace', 'virtfleet-system', '--save-config']);
});

describe('deploy/', () => {
  it('passes a server-side dry run, then applies', async () => {
    const dryRun = await kubectl(['apply', '--dry-run=server', '-k', 'deploy/']);
    // Warnings are fine (e.g. the CRDs were installed by server-side apply); errors are not.
    expect(dryRun.stderr).not.toMatch(/^error/im);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('deployment.apps/virtfleet-controller created (server dry run)');
    expect(dryRun.stdout).toContain(
      'mutatingadmissionpolicybinding.admissionregistration.k8s.io/virtfleet-vm-finalizer created (server dry run)',
    );
    // Applied for real without the finalizer policy's binding: this API server is shared by the
    // whole tier, and bound, the policy would give every VM any other suite makes our finalizer,
    // which only a running controller removes (deploy/base/vm-finalizer-policy.yaml).
    const rendered = await kubectl(['kustomize', 'deploy/']);
    expect(rendered.code).toBe(0);
    const unbound = parseAllDocuments(rendered.stdout)
      .filter((doc) => (doc.toJS() as { kind?: string }).kind !== 'MutatingAdmissionPolicyBinding')
      .map((doc) => doc.toString())
      .join('---\n');
    const applied = await kubectl(['apply', '-f', '-'], { input: unbound });
    expect(applied.stderr).not.toMatch(/^error/im);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('mutatingadmissionpolicy.admissionregistration.k8s.io/virtfleet-vm-finalizer');
    const binding = await kubectl(['get', 'mutatingadmissionpolicybinding', 'virtfleet-vm-finalizer']);
    expect(binding.stderr).toMatch(/NotFound/);
  });

  it.each([
    ['watch its resources in every namespace', ['watch', 'virtualmachines.virtfleet.io', '--all-namespaces']],
    ['list host pools', ['list', 'hostpools.virtfleet.io']],
    ['patch VM status', ['patch', 'virtualmachines.virtfleet.io', '--subresource=status', '-n', 'default']],
    ['patch VMs (finalizers)', ['patch', 'virtualmachines.virtfleet.io', '-n', 'default']],
    ['create events anywhere', ['create', 'events', '-n', 'default']],
    ["list events anywhere (an orphan domain's Deleted Event)", ['list', 'events', '-n', 'default']],
    ['read host credentials in its namespace', ['get', 'secrets', '-n', 'virtfleet-system']],
    ['renew its lease', ['update', 'leases.coordination.k8s.io/virtfleet-controller', '-n', 'virtfleet-system']],
    ['label its own pod (the install endpoint leader)', ['patch', 'pods', '-n', 'virtfleet-system']],
    ['read its own pod (a stale leader label)', ['get', 'pods', '-n', 'virtfleet-system']],
  ])('lets the controller %s', async (_what, args) => {
    expect(await canI(...args)).toBe(true);
  });

  it('lets a standby watch just its lease (list/watch by name, as the leader elector asks)', async () => {
    const args = [
      'get',
      'leases',
      '-n',
      'virtfleet-system',
      '--field-selector',
      'metadata.name=virtfleet-controller',
      '--as',
      SA,
    ];
    const listed = await kubectl(args);
    expect(listed.stderr).not.toMatch(/forbidden/i);
    expect(listed.code).toBe(0);
    const all = await kubectl(['get', 'leases', '-n', 'virtfleet-system', '--as', SA]);
    expect(all.stderr).toMatch(/forbidden/i);
  });

  it.each([
    ['read Secrets in other namespaces', ['get', 'secrets', '-n', 'default']],
    ['list Secrets cluster-wide', ['list', 'secrets', '--all-namespaces']],
    ['delete CRDs', ['delete', 'customresourcedefinitions.apiextensions.k8s.io']],
    ['delete VMs', ['delete', 'virtualmachines.virtfleet.io', '-n', 'default']],
    ['change VM specs wholesale', ['update', 'virtualmachines.virtfleet.io', '-n', 'default']],
    ['create pods', ['create', 'pods', '-n', 'default']],
    ['patch pods outside its namespace', ['patch', 'pods', '-n', 'default']],
    ['list or delete pods in its namespace', ['delete', 'pods', '-n', 'virtfleet-system']],
    ['take over other leases', ['update', 'leases.coordination.k8s.io/kube-scheduler', '-n', 'virtfleet-system']],
    ['edit RBAC', ['create', 'clusterrolebindings']],
    ['do anything at all', ['*', '*']],
  ])('does not let the controller %s', async (_what, args) => {
    expect(await canI(...args)).toBe(false);
  });

  it('lets virtfleet-api read images and write their status (status.upload), and nothing more of them', async () => {
    const api = 'system:serviceaccount:virtfleet-system:virtfleet-api';
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', '--as', api, ...args])).stdout.trim();
    expect(await can('get', 'virtualmachineimages.virtfleet.io', '-n', 'default')).toBe('yes');
    expect(await can('patch', 'virtualmachineimages.virtfleet.io', '--subresource=status', '-n', 'default')).toBe(
      'yes',
    );
    expect(await can('patch', 'virtualmachineimages.virtfleet.io', '-n', 'default')).toBe('no');
    expect(await can('list', 'virtualmachineimages.virtfleet.io', '-n', 'default')).toBe('no');
  });

  it('stages downloads and uploads on disk volumes sized for images, keeping /tmp for credentials in memory', async () => {
    const rendered = await kubectl(['kustomize', 'deploy/']);
    expect(rendered.code).toBe(0);
    type Volume = { name: string; emptyDir?: { medium?: string; sizeLimit?: string } };
    type Container = {
      args: string[];
      env?: Array<{ name: string; value?: string }>;
      volumeMounts: Array<{ name: string; mountPath: string }>;
    };
    type Deployment = {
      kind: string;
      metadata: { name: string };
      spec: { template: { spec: { containers: Container[]; volumes: Volume[] } } };
    };
    const objects = parseAllDocuments(rendered.stdout).map((doc) => doc.toJS() as Deployment);
    const pod = (name: string) =>
      objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!.spec.template.spec;
    for (const name of ['virtfleet-controller', 'virtfleet-api']) {
      const { containers, volumes } = pod(name);
      const mounts = containers[0]!.volumeMounts;
      const staging = volumes.find((v) => v.name === 'staging');
      // Node disk (no medium: Memory), at least 1 GiB; /tmp stays the 16Mi memory one.
      expect(staging?.emptyDir?.medium).toBeUndefined();
      expect(byteCount('sizeLimit', staging?.emptyDir?.sizeLimit ?? '0')).toBeGreaterThanOrEqual(2 ** 30);
      const tmp = volumes.find((v) => v.name === mounts.find((m) => m.mountPath === '/tmp')?.name);
      expect(tmp?.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '16Mi' });
    }
    const controller = pod('virtfleet-controller').containers[0]!;
    const stagingMount = controller.volumeMounts.find((m) => m.name === 'staging')!.mountPath;
    expect(controller.env?.find((e) => e.name === STAGING_DIR_ENV)?.value).toBe(stagingMount);

    const api = pod('virtfleet-api');
    const flag = (name: string) =>
      api.containers[0]!.args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
    expect(flag('--upload-dir')).toBe(api.containers[0]!.volumeMounts.find((m) => m.name === 'staging')!.mountPath);
    const limit = api.volumes.find((v) => v.name === 'staging')!.emptyDir!.sizeLimit!;
    expect(byteCount('--max-upload-bytes', flag('--max-upload-bytes') ?? '')).toBeLessThanOrEqual(
      byteCount('sizeLimit', limit),
    );
  });
});
