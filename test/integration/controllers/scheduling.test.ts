// Placement through the controller: a VM too big for every host waits with the reason per
// host and is placed as soon as the pool grows; a burst of VMs applied at once never takes a
// host past its capacity, although each status write reaches the cache only later. An
// anti-affinity group holds as a rule (Required, the default) or gives way (Preferred); a pool's
// spec.scheduling.autoHypervisor overrides the hypervisor: auto rule table.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { vmResources } from '../../../src/controllers/allocations.js';
import { quantityToNumber } from '../../../src/api/quantity.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const SMALL: HostDecl = { name: 'small-1', cpus: 2, memoryGiB: 1, hypervisor: 'kvm' };
const BIG: HostDecl = { name: 'big-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
const BURST: HostDecl[] = ['b-1', 'b-2', 'b-3'].map((name) => ({
  name,
  cpus: 4,
  memoryGiB: 2,
  hypervisor: 'kvm' as const,
}));

const SOLO: HostDecl = { name: 'solo-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const KVM: HostDecl = { name: 'kvm-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const XEN: HostDecl = { name: 'xen-1', cpus: 4, memoryGiB: 4, hypervisor: 'xen' };

const bench = new ControllerBench('vm-sched');

beforeAll(() => bench.start());
afterAll(() => bench.close());

describe('scheduling', () => {
  it('leaves a VM that fits nowhere unscheduled with the reason for each host, and places it when a host is added', async () => {
    const pool = await bench.createPool('grow', [SMALL], { scheduling: { cpuOvercommit: 1 } });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'small-1 ready');
    await bench.createVm('big', pool, { memory: '4Gi' });
    const waiting = await bench.untilVm(
      'big',
      (vm) => /insufficient/.test(condition(vm, 'Scheduled')?.message ?? ''),
      'Scheduled=False for lack of room',
    );
    expect(condition(waiting, 'Scheduled')).toMatchObject({
      reason: 'Unschedulable',
      observedGeneration: waiting.metadata.generation,
    });
    // Not done: Ready says so, for tools that read only Ready (kstatus, kubectl wait).
    expect(condition(waiting, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      observedGeneration: waiting.metadata.generation,
    });
    expect(condition(waiting, 'Scheduled')?.message).toBe(
      'no host fits: small-1: insufficient memory: need 4Gi, free 1Gi',
    );
    expect(waiting.status?.phase).toBe('Pending');
    expect(waiting.status?.host).toBeUndefined();

    await bench.kube.patch(
      { kind: 'HostPool', group: 'virtfleet.io', version: 'v1alpha1', plural: 'hostpools', namespaced: false },
      undefined,
      pool,
      {
        spec: { hosts: bench.poolSpecHosts([SMALL, BIG]) },
      },
    );
    const placed = await bench.untilVm('big', isRunning, 'Running on the new host');
    expect(placed.status?.host).toBe('big-1');
    expect((await bench.domains(BIG)).map((d) => d.uuid)).toEqual([placed.metadata.uid]);
    expect(await bench.domains(SMALL)).toEqual([]);
  });

  it('never pushes a host past its capacity when 32 VMs are applied at once', async () => {
    // 3 hosts × 4 CPUs without overcommit: room for 12 one-vCPU VMs; 20 must wait.
    const pool = await bench.createPool('burst', BURST, {
      scheduling: { cpuOvercommit: 1, memoryOvercommit: 1, strategy: 'binpack' },
    });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 3, 'three hosts ready');
    const names = Array.from({ length: 32 }, (_, i) => `burst-${i}`);
    await Promise.all(names.map((name) => bench.createVm(name, pool, { memory: '256Mi' })));

    const decided = () =>
      names
        .map((name) => bench.vm(name))
        .filter((vm) => vm && (isRunning(vm) || condition(vm, 'Scheduled')?.status === 'False'));
    await bench.until(() => decided().length === 32, 60_000, 'every burst VM to be Running or Unschedulable');
    const vms = names.map((name) => bench.vm(name)!);
    const running = vms.filter(isRunning);
    expect(running).toHaveLength(12);
    for (const vm of vms.filter((v) => !isRunning(v))) {
      expect(condition(vm, 'Scheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
      expect(condition(vm, 'Scheduled')?.message).toMatch(/b-1: insufficient CPU: need 1, free 0 of 4/);
    }
    for (const host of BURST) {
      const here = running.filter((vm) => vm.status?.host === host.name);
      const cpus = here.reduce((sum, vm) => sum + vmResources(vm.spec).vcpus, 0);
      const memory = here.reduce((sum, vm) => sum + quantityToNumber(vm.spec.memory), 0);
      expect(cpus).toBeLessThanOrEqual(host.cpus);
      expect(memory).toBeLessThanOrEqual(host.memoryGiB * 2 ** 30);
      // What libvirt holds agrees: one domain per placed VM, nothing else.
      const domains = await bench.domains(host);
      expect(domains.map((d) => d.uuid).sort()).toEqual(here.map((vm) => vm.metadata.uid).sort());
    }
    const status = await bench.untilPool(
      pool,
      (p) => (p.status?.hosts ?? []).every((h) => h.vmCount === 4),
      'four VMs on each host',
    );
    expect(status.status?.hosts?.map((h) => h.allocated)).toEqual([1, 2, 3].map(() => ({ cpus: 4, memory: '1Gi' })));
  });

  it('keeps an anti-affinity group apart when Required (the default), and lets it share a host when Preferred', async () => {
    const pool = await bench.createPool('apart', [SOLO]);
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'solo-1 ready');
    await bench.createVm('db-a', pool, { memory: '256Mi', placement: { antiAffinityGroup: 'db' } });
    const first = await bench.untilVm('db-a', isRunning, 'db-a Running');
    expect(first.spec.placement?.antiAffinityMode).toBe('Required'); // the API server's default
    expect(first.status?.host).toBe('solo-1');

    await bench.createVm('db-b', pool, { memory: '256Mi', placement: { antiAffinityGroup: 'db' } });
    const refused = await bench.untilVm(
      'db-b',
      (vm) => condition(vm, 'Scheduled')?.status === 'False',
      'db-b Unschedulable',
    );
    expect(condition(refused, 'Scheduled')?.message).toBe(
      'no host fits: solo-1: already runs a VM of anti-affinity group db',
    );

    await bench.createVm('db-c', pool, {
      memory: '256Mi',
      placement: { antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' },
    });
    const shared = await bench.untilVm('db-c', isRunning, 'db-c Running');
    expect(shared.status?.host).toBe('solo-1');
    expect(shared.status?.hypervisorReason).toBe(
      'workload general prefers kvm; every fitting kvm host already runs a VM of anti-affinity group db (Preferred), so it shares one; spread chose solo-1',
    );
  });

  it("follows the pool's spec.scheduling.autoHypervisor for hypervisor: auto", async () => {
    const pool = await bench.createPool('auto', [KVM, XEN], { scheduling: { autoHypervisor: { io: 'kvm' } } });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'kvm-1 and xen-1 ready');
    await bench.createVm('io-1', pool, { memory: '256Mi', hypervisor: 'auto', workload: 'io' });
    await bench.createVm('general-1', pool, { memory: '256Mi', hypervisor: 'auto', workload: 'general' });
    const io = await bench.untilVm('io-1', isRunning, 'io-1 Running');
    expect(io.status).toMatchObject({ host: 'kvm-1', hypervisor: 'kvm' });
    expect(io.status?.hypervisorReason).toBe('workload io prefers kvm; spread chose kvm-1');
    // A workload the pool leaves out keeps the built-in rule.
    const general = await bench.untilVm('general-1', isRunning, 'general-1 Running');
    expect(general.status?.hypervisorReason).toBe('workload general prefers kvm; spread chose kvm-1');
  });
});
