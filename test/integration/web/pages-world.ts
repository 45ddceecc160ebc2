// The world the console's page tests act in: people (an admin who is also a HostPool operator and
// may read the profile's Secret, and a viewer), a HostPool of two simulated hosts served by the
// in-process controllers, an InstallProfile with its Secret, and three running VMs.
import { INSTALL_PROFILE } from '../../../src/controllers/installprofile.js';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { HOST_POOL, VIRTUAL_MACHINE, type VmObject } from '../../../src/controllers/resources.js';
import { serviceAccountToken } from '../../harness/service-accounts.js';
import { POOL_LABEL, WebTestController } from './controller.js';
import { until, type WebStack } from './stack.js';

export const NS = 'web-run';
export const PEOPLE = 'web-people';
export const POOL = 'web-pool';
export const VMS = ['runner', 'second', 'third'];
export const ROOT_PASSWORD = 'Plain root pa$$word, never shown';
export const ADMIN_HASH =
  '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';

function vm(name: string): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NS },
    spec: { hostPoolRef: { name: POOL }, memory: '128Mi', kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' } },
  } as unknown as VmObject;
}

/** The VM once it is Running on a host. */
export function running(stack: WebStack, name: string): Promise<VmObject> {
  return until(async () => {
    const current = await stack.admin.get<VmObject>(VIRTUAL_MACHINE, NS, name);
    return current.status?.phase === 'Running' && current.status.host ? current : undefined;
  }, `${name} Running`);
}

export async function buildWorld(stack: WebStack): Promise<{
  controller: WebTestController;
  tokens: { admin: string; viewer: string };
}> {
  const tokens = { admin: '', viewer: '' };
  const run = stack.run;
  await run(['create', 'namespace', NS]);
  await run(['create', 'clusterrole', 'web-events-reader', '--verb=get,list,watch', '--resource=events']);
  // The admin may read the profile's Secret (virtfleet-admin does not grant Secrets); the viewer may not.
  await run(['create', 'role', 'web-secret-reader', '-n', NS, '--verb=get', '--resource=secrets']);
  // HostPools are changed by cluster administrators only (deploy/base/user-roles.yaml): the
  // admin here is one, for the maintenance toggle.
  await run([
    'create',
    'clusterrole',
    'web-pool-operator',
    '--verb=get,list,watch,patch',
    '--resource=hostpools.virtfleet.io',
  ]);
  tokens.admin = await serviceAccountToken(run, PEOPLE, 'web-admin');
  for (const role of ['virtfleet-admin', 'web-events-reader', 'web-pool-operator'])
    await run([
      'create',
      'clusterrolebinding',
      `web-admin-${role}`,
      `--clusterrole=${role}`,
      `--serviceaccount=${PEOPLE}:web-admin`,
    ]);
  await run([
    'create',
    'rolebinding',
    'web-admin-secrets',
    '-n',
    NS,
    '--role=web-secret-reader',
    `--serviceaccount=${PEOPLE}:web-admin`,
  ]);
  tokens.viewer = await serviceAccountToken(run, PEOPLE, 'web-viewer');
  for (const role of ['virtfleet-view', 'web-events-reader'])
    await run([
      'create',
      'clusterrolebinding',
      `web-viewer-${role}`,
      `--clusterrole=${role}`,
      `--serviceaccount=${PEOPLE}:web-viewer`,
    ]);

  const controller = new WebTestController(stack.adminConfig, NS);
  await stack.admin.create(HOST_POOL, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name: POOL, labels: { [POOL_LABEL]: 'yes' } },
    spec: {
      hosts: [
        { name: 'h1', uri: controller.host('web-h1'), hypervisor: 'kvm' },
        { name: 'h2', uri: controller.host('web-h2'), hypervisor: 'kvm' },
      ],
    },
  });
  await stack.admin.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'install-passwords', namespace: NS },
    stringData: { 'root-password': ROOT_PASSWORD, 'admin-hash': ADMIN_HASH },
  });
  await stack.admin.create(INSTALL_PROFILE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'InstallProfile',
    metadata: { name: 'rocky', namespace: NS },
    spec: {
      os: { family: 'rhel', name: 'Rocky', version: '9.4' },
      installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
      rootPassword: { secretKeyRef: { name: 'install-passwords', key: 'root-password' } },
      users: [
        { name: 'admin', groups: ['wheel'], passwordSecretRef: { name: 'install-passwords', key: 'admin-hash' } },
      ],
    },
  });
  controller.start();
  for (const name of VMS) await stack.admin.create(VIRTUAL_MACHINE, vm(name));
  for (const name of VMS) await running(stack, name);
  return { controller, tokens };
}

/** Deletes the VMs (the controller removes their domains and finalizers), then stops the controller. */
export async function tearDownWorld(stack: WebStack, controller: WebTestController): Promise<void> {
  for (const name of VMS) await stack.admin.delete(VIRTUAL_MACHINE, NS, name).catch(() => undefined);
  await until(
    async () => ((await stack.admin.list(VIRTUAL_MACHINE, { namespace: NS })).items.length === 0 ? true : undefined),
    'the VMs deleted by the controller',
    60_000,
  ).catch(() => undefined);
  await controller.close();
}
