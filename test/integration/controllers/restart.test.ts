// A restarted controller finds what the previous one made: the domain's UUID is the VM's UID
// and status.host says where it is, so a new process neither defines a second domain nor
// places the VM again. (The simulated hosts live in the libvirt connections, which the test
// keeps across the restart: that is the part of the world a real restart keeps too.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const HOSTS: HostDecl[] = [
  { name: 'r-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' },
  { name: 'r-2', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' },
];

const bench = new ControllerBench('vm-restart');

beforeAll(() => bench.start());
afterAll(() => bench.close());

async function allDomains() {
  return (await Promise.all(HOSTS.map((host) => bench.domains(host)))).flat();
}

describe('a restarted controller', () => {
  it('adopts the domains it finds by UUID and makes no second one', async () => {
    const pool = await bench.createPool('restart', HOSTS);
    const names = ['keep-0', 'keep-1', 'keep-2'];
    for (const name of names) await bench.createVm(name, pool);
    for (const name of names) await bench.untilVm(name, isRunning, 'Running');
    const before = names.map((name) => [name, bench.vm(name)!.status?.host]);
    expect((await allDomains()).map((d) => d.uuid).sort()).toEqual(
      names.map((name) => bench.vm(name)!.metadata.uid).sort(),
    );

    await bench.stopController();
    // While no controller runs: a spec change the new one has to apply to the existing domain.
    await bench.patchVm('keep-0', { memory: '192Mi' });
    await bench.startController();

    const changed = await bench.untilVm(
      'keep-0',
      (vm) => condition(vm, 'RestartRequired')?.status === 'True',
      'RestartRequired from the new controller',
    );
    expect(condition(changed, 'RestartRequired')?.message).toMatch(/spec\.memory/);
    await bench.createVm('after', pool);
    await bench.untilVm('after', isRunning, 'Running');

    expect(names.map((name) => [name, bench.vm(name)!.status?.host])).toEqual(before);
    const domains = await allDomains();
    expect(domains).toHaveLength(4);
    expect(new Set(domains.map((d) => d.uuid)).size).toBe(4);
    for (const name of [...names, 'after']) {
      const vm = bench.vm(name)!;
      expect(domains.filter((d) => d.uuid === vm.metadata.uid)).toHaveLength(1);
      expect(vm.status?.phase).toBe('Running');
    }
  });
});
