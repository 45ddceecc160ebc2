// spec.cloudInit against a real kube-apiserver and libvirt's test driver: what the API refuses at
// the field (both sources at once, more bytes than a seed holds), a missing Secret and user data
// that is not YAML named in Provisioned without their values (nor in Events and logs), and a
// seed that renders going to the host's storage pool. libvirt's test driver takes no uploads
// (it has no streams), so here the write of the seed is refused by the host, and no half-written
// volume is left; the seed's bytes on a real libvirtd and the CD-ROM in its domain are checked on
// the rig (test/e2e/cloud-init-rig.test.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { volumeNameOf } from '../../../src/controllers/vm-storage.js';
import { CLOUD_INIT_SEED } from '../../../src/controllers/vm/cloud-init.js';
import { ControllerBench, condition, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'seed-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const STORAGE_POOL = 'vf-seeds';
/** A value that must never leave the Secret. */
const SECRET_WORD = 'pa55-hunter2-do-not-print';

const bench = new ControllerBench('vm-cloud-init', { hostRetryMs: 1_000 });
let pool: string;

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('seeds', [HOST], {
    storage: { pool: STORAGE_POOL, path: `${bench.hosts.dir}/seeds` },
  });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  await bench.close();
});

function secret(name: string, data: Record<string, string>) {
  return bench.kube.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: bench.namespace },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });
}

describe('spec.cloudInit at the API', () => {
  it('refuses userData together with userDataSecretRef, naming the field', async () => {
    await expect(
      bench.createVm('both', pool, {
        cloudInit: { userData: '#cloud-config\n{}\n', userDataSecretRef: { name: 's', key: 'k' } },
      }),
    ).rejects.toThrow(/spec\.cloudInit\.userDataSecretRef: .*set userData or userDataSecretRef, not both/);
  });

  it('refuses user data of more bytes than a seed holds, though fewer characters than maxLength', async () => {
    const userData = `#!/bin/sh\n# ${'é'.repeat(40_000)}\n`; // 40,014 characters, 80,014 bytes
    await expect(bench.createVm('big', pool, { cloudInit: { userData } })).rejects.toThrow(
      /spec\.cloudInit\.userData: .*userData must be at most 65536 bytes/,
    );
  });
});

describe('spec.cloudInit in the controller', () => {
  it('names a missing Secret, then YAML problems by position only, and never prints the value', async () => {
    await bench.createVm('web-1', pool, {
      cloudInit: { userDataSecretRef: { name: 'seed', key: 'user-data' } },
    });
    await bench.untilVm(
      'web-1',
      (vm) =>
        condition(vm, 'Provisioned')?.status === 'False' &&
        condition(vm, 'Provisioned')!.message.startsWith(
          `spec.cloudInit.userDataSecretRef (Secret seed, key user-data): no Secret seed in namespace ${bench.namespace}; create it or fix the name`,
        ),
      'Provisioned names the missing Secret',
    );

    await secret('seed', { 'user-data': `#cloud-config\npassword: ${SECRET_WORD}\n  broken: [\n` });
    const bad = await bench.untilVm(
      'web-1',
      (vm) =>
        /#cloud-config user data is not valid YAML \(\w+ at line \d+, column \d+\)/.test(
          condition(vm, 'Provisioned')?.message ?? '',
        ),
      'Provisioned says the user data is not YAML',
      60_000,
    );
    expect(condition(bad, 'Provisioned')!.reason).toBe('ProvisioningFailed');
    expect(JSON.stringify(bad.status)).not.toContain(SECRET_WORD);
    const events = await bench.events('web-1');
    expect(events.some((e) => e.message?.includes('not valid YAML'))).toBe(true);
    expect(JSON.stringify(events)).not.toContain(SECRET_WORD);
    expect(JSON.stringify(bench.logs.lines())).not.toContain(SECRET_WORD);
  });

  it('writes a seed that renders to the storage pool; the test driver refuses the upload and nothing is left', async () => {
    await bench.createVm('web-2', pool, {
      cloudInit: {
        userData: '#cloud-config\nhostname: web-2\n',
        networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
      },
    });
    const vm = await bench.untilVm(
      'web-2',
      (v) =>
        (condition(v, 'Provisioned')?.message ?? '').startsWith('spec.cloudInit: the seed volume cannot be written'),
      'the seed write refused by the test driver',
      60_000,
    );
    const volume = volumeNameOf(vm, CLOUD_INIT_SEED);
    expect(condition(vm, 'Provisioned')!.message).toContain(`upload into volume ${volume} in pool ${STORAGE_POOL}`);
    expect(await bench.hypervisor(HOST).volume(STORAGE_POOL, volume)).toBeUndefined();
    expect((await bench.domains(HOST)).some((d) => d.uuid === vm.metadata.uid)).toBe(false);
  });
});
