// A running VM on a simulated host with a libvirt network: the addresses the host reports land
// in status.addresses under the spec's interface names; a memory change within the maximum the
// domain started with is applied live (balloon), one beyond it waits for a restart and says so.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAction } from '../../../src/cli/vm.js';
import { child, childrenNamed, parseXml } from '../../../src/hypervisors/xml.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'net-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm', network: true };

const bench = new ControllerBench('vm-live', { hostRetryMs: 1_000, addressRetryMs: 1_000 });
let pool: string;

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('live', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  await bench.close();
});

async function liveXml(name: string): Promise<string> {
  return bench.hypervisor(HOST).xml(bench.vm(name)?.metadata.uid ?? '');
}

function currentMemoryKiB(xml: string): number {
  return Number(child(parseXml(xml), 'currentMemory')?.text);
}

describe('a running VM', () => {
  let domainId: number | null = null;

  it('reports the addresses of its interfaces by their spec names and MACs', async () => {
    await bench.createVm('web', pool, {
      memory: '256Mi',
      networks: [{ name: 'eth0' }, { name: 'uplink', bridge: 'br0', macAddress: '52:54:00:aa:bb:01' }],
    });
    const vm = await bench.untilVm(
      'web',
      (v) => isRunning(v) && (v.status?.addresses?.length ?? 0) === 2,
      'Running with two addresses',
    );
    const devices = child(parseXml(await liveXml('web')), 'devices')!;
    const macs = childrenNamed(devices, 'interface').map((nic) => child(nic, 'mac')?.attrs.address);
    // The test driver answers with 192.168.122.x on a libvirt network and makes up 192.168.0.x otherwise.
    expect(vm.status?.addresses).toEqual([
      { interface: 'eth0', ip: expect.stringMatching(/^192\.168\.122\.\d+$/), mac: macs[0] },
      { interface: 'uplink', ip: expect.stringMatching(/^192\.168\.0\.\d+$/), mac: '52:54:00:aa:bb:01' },
    ]);
    domainId = (await bench.hypervisor(HOST).state(vm.metadata.uid ?? '')).id;
  });

  it('applies a smaller memory live, without a restart, and nothing waits', async () => {
    const patched = await bench.patchVm('web', { memory: '128Mi' });
    const vm = await bench.untilVm(
      'web',
      (v) => v.status?.observedGeneration === patched.metadata.generation && isRunning(v),
      'the change seen',
    );
    expect(currentMemoryKiB(await liveXml('web'))).toBe(128 * 1024);
    expect((await bench.hypervisor(HOST).state(vm.metadata.uid ?? '')).id).toBe(domainId);
    expect(condition(vm, 'RestartRequired')?.status ?? 'False').toBe('False');
    const live = (await bench.events('web')).find((e) => e.reason === 'LiveUpdated');
    expect(live?.message).toBe(`memory set to 128 MiB on the running domain vf-${bench.namespace}_web (spec.memory)`);
  });

  it('grows it back live up to the maximum it started with', async () => {
    const patched = await bench.patchVm('web', { memory: '256Mi' });
    await bench.untilVm(
      'web',
      (v) => v.status?.observedGeneration === patched.metadata.generation && isRunning(v),
      'the change seen',
    );
    expect(currentMemoryKiB(await liveXml('web'))).toBe(256 * 1024);
  });

  it('leaves memory beyond that maximum for the next start, naming the field', async () => {
    await bench.patchVm('web', { memory: '512Mi' });
    const vm = await bench.untilVm('web', (v) => condition(v, 'RestartRequired')?.status === 'True', 'RestartRequired');
    expect(condition(vm, 'RestartRequired')?.message).toBe(
      'spec.memory changed; the running domain takes the change at its next start (`virtfleet vm restart web`)',
    );
    expect(currentMemoryKiB(await liveXml('web'))).toBe(256 * 1024);

    await runAction('restart', 'web', { namespace: bench.namespace, wait: true, timeout: '30' }, () => undefined);
    const restarted = await bench.untilVm(
      'web',
      (v) => isRunning(v) && condition(v, 'RestartRequired')?.status === 'False',
      'restarted',
    );
    expect(currentMemoryKiB(await liveXml('web'))).toBe(512 * 1024);
    expect(restarted.status?.addresses).toHaveLength(2);
  });

  it('drops its addresses when stopped', async () => {
    await runAction('stop', 'web', { namespace: bench.namespace, wait: true, timeout: '30' }, () => undefined);
    const vm = await bench.untilVm('web', (v) => v.status?.phase === 'Stopped', 'Stopped');
    expect(vm.status?.addresses).toBeUndefined();
  });
});
