// A VirtualMachine's life on a pool of two simulated hosts (a KVM and a Xen one, declared,
// since the test driver cannot tell): created and running with its conditions, the
// hypervisor chosen for its workload, stopped and started by runStrategy, a spec change that
// waits for a restart, and deleted without a trace on the host. The pool's status follows.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const KVM: HostDecl = { name: 'kvm-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const XEN: HostDecl = { name: 'xen-1', cpus: 8, memoryGiB: 2, hypervisor: 'xen' };

const bench = new ControllerBench('vm-life');
let pool: string;

beforeAll(async () => {
  await bench.start();
  // Heartbeats every second, so the steady-state test sees several in little time.
  pool = await bench.createPool('life', [KVM, XEN], { failureDetection: { heartbeatPeriodSeconds: 1 } });
});

afterAll(async () => {
  await bench.close();
});

describe('HostPool controller', () => {
  it('connects to every host and reports it ready, with hypervisor, versions and capacity', async () => {
    const current = await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'both hosts ready');
    expect(current.status?.hostCount).toBe(2);
    expect(current.status?.observedGeneration).toBe(current.metadata.generation);
    const hosts = current.status?.hosts ?? [];
    expect(hosts.map((h) => [h.name, h.ready, h.hypervisor, h.capacity])).toEqual([
      ['kvm-1', true, 'kvm', { cpus: 4, memory: '4Gi' }],
      ['xen-1', true, 'xen', { cpus: 8, memory: '2Gi' }],
    ]);
    for (const host of hosts) {
      expect(host.libvirtVersion).toMatch(/^\d+\.\d+\.\d+$/);
      expect(host.allocated).toEqual({ cpus: 0, memory: '0' });
      expect(host.vmCount).toBe(0);
    }
    expect(condition(current, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'HostsReady',
      observedGeneration: current.metadata.generation,
    });
    expect(condition(current, 'Degraded')).toMatchObject({ status: 'False', reason: 'AllHostsReady' });
    expect(condition(current, 'HypervisorMismatch')).toMatchObject({ status: 'False' });
  });
});

describe('VirtualMachine controller', () => {
  let uid = '';

  it('places a new VM, defines its domain (UUID = UID) and runs it, with every condition True for its generation', async () => {
    const created = await bench.createVm('web', pool);
    uid = created.metadata.uid ?? '';
    const vm = await bench.untilVm('web', isRunning, 'Running');
    const status = vm.status!;
    expect(status.host).toBe('kvm-1');
    expect(status.hypervisor).toBe('kvm');
    // hypervisor auto, workload general: the rule table prefers KVM, and says so.
    expect(status.hypervisorReason).toMatch(/workload general prefers kvm/);
    expect(status.domainUUID).toBe(uid);
    expect(status.domainName).toBe(`vf-${bench.namespace}_web`);
    expect(status.observedGeneration).toBe(vm.metadata.generation);
    expect(condition(vm, 'Scheduled')).toMatchObject({ reason: 'Placed' });
    expect(condition(vm, 'Provisioned')).toMatchObject({ reason: 'Defined' });
    expect(condition(vm, 'Ready')).toMatchObject({ reason: 'Running' });
    expect(vm.metadata.finalizers).toContain('virtfleet.io/domain');

    const domains = await bench.domains(KVM);
    expect(domains.map((d) => [d.uuid, d.state])).toEqual([[uid, 'running']]);
    expect(await bench.domains(XEN)).toEqual([]);
  });

  it('chooses Xen for an io workload and records why', async () => {
    await bench.createVm('storage', pool, { workload: 'io', cpu: { cores: 2 } });
    const vm = await bench.untilVm('storage', isRunning, 'Running');
    expect(vm.status?.host).toBe('xen-1');
    expect(vm.status?.hypervisor).toBe('xen');
    expect(vm.status?.hypervisorReason).toMatch(/workload io prefers xen/);
  });

  it('counts what the VMs were given in the pool status', async () => {
    const current = await bench.untilPool(
      pool,
      (p) => (p.status?.hosts ?? []).every((h) => h.vmCount === 1),
      'one VM on each host',
    );
    const byName = Object.fromEntries((current.status?.hosts ?? []).map((h) => [h.name, h]));
    expect(byName['kvm-1']?.allocated).toEqual({ cpus: 1, memory: '128Mi' });
    expect(byName['xen-1']?.allocated).toEqual({ cpus: 2, memory: '128Mi' });
  });

  it('writes nothing to the API server while the pool and its VMs are steady, heartbeats included', async () => {
    // Each pool reconcile here is a heartbeat (requeued after heartbeatPeriodSeconds).
    const heartbeats = async (count: number) => {
      const start = await bench.reconciles('hostpool');
      for (const deadline = Date.now() + 30_000; (await bench.reconciles('hostpool')) < start + count;) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} heartbeats`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    // One heartbeat first: the pool's status catches up with the VM placed just before
    // (allocation, VM count) and Events of the start land; from then on all is steady.
    await heartbeats(1);
    const writes = bench.manager!.client.counts.writes;
    await heartbeats(4);
    expect(bench.manager!.client.counts.writes - writes).toBe(0);
  });

  it('stops the VM for runStrategy Halted and starts it again for Always', async () => {
    await bench.patchVm('web', { runStrategy: 'Halted' });
    const stopped = await bench.untilVm(
      'web',
      (vm) => vm.status?.phase === 'Stopped' && condition(vm, 'Ready')?.observedGeneration === vm.metadata.generation,
      'Stopped',
    );
    // Stopped as runStrategy Halted asks: Ready=True (kstatus: Current), nothing under way.
    expect(condition(stopped, 'Ready')).toMatchObject({ status: 'True', reason: 'Stopped' });
    expect(condition(stopped, 'Reconciling')).toBeUndefined();
    expect(condition(stopped, 'Provisioned')).toMatchObject({ status: 'True' });
    expect((await bench.domains(KVM)).map((d) => d.state)).toEqual(['shutoff']);

    await bench.patchVm('web', { runStrategy: 'Always' });
    await bench.untilVm('web', isRunning, 'Running again');
    expect((await bench.domains(KVM)).map((d) => [d.uuid, d.state])).toEqual([[uid, 'running']]);
  });

  it('redefines the domain on a spec change it cannot apply live and says which fields wait for a restart', async () => {
    await bench.patchVm('web', { memory: '256Mi', cpu: { cores: 2 } });
    const pending = await bench.untilVm(
      'web',
      (vm) => condition(vm, 'RestartRequired')?.status === 'True',
      'RestartRequired',
    );
    const message = condition(pending, 'RestartRequired')?.message ?? '';
    expect(message).toMatch(/spec\.memory/);
    expect(message).toMatch(/spec\.cpu/);
    expect(condition(pending, 'RestartRequired')?.observedGeneration).toBe(pending.metadata.generation);
    expect(pending.status?.phase).toBe('Running'); // never restarted behind the user's back

    // Stop and start: the domain boots with the new definition and nothing waits any more.
    await bench.patchVm('web', { runStrategy: 'Halted' });
    await bench.untilVm('web', (vm) => vm.status?.phase === 'Stopped', 'Stopped');
    await bench.patchVm('web', { runStrategy: 'Always' });
    const restarted = await bench.untilVm(
      'web',
      (vm) => isRunning(vm) && condition(vm, 'RestartRequired')?.status === 'False',
      'Running the new definition',
    );
    expect(condition(restarted, 'RestartRequired')).toMatchObject({ reason: 'NoPendingChanges' });
    expect(restarted.spec.memory).toBe('256Mi'); // spec is the user's: never written back
  });

  it('records an Event for each step, and one for the creation that tells placement, definition and start', async () => {
    const events = await bench.kube.list<
      KubeObject & { reason?: string; message?: string; count?: number; involvedObject?: { uid?: string } }
    >({ kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: bench.namespace });
    const mine = events.items.filter((e) => e.involvedObject?.uid === uid);
    const reasons = new Set(mine.map((e) => e.reason));
    for (const reason of ['Started', 'ShuttingDown', 'Redefined', 'RestartRequired']) expect(reasons).toContain(reason);
    // Placed, defined and started in one reconcile: one Event that says all three, not three Events.
    expect(reasons).not.toContain('Scheduled');
    expect(reasons).not.toContain('Defined');
    const creation = mine.filter((e) => /^placed on /.test(e.message ?? ''));
    expect(creation).toHaveLength(1);
    expect(creation[0]).toMatchObject({ reason: 'Started', count: 1 });
    expect(creation[0]!.message).toMatch(
      /^placed on kvm-1 \(kvm\): .+; domain \S+ defined on kvm-1; started on test:\/\/\/.+$/,
    );
  });

  it('deletes the domain from its host and any copy on another host of the pool, then lets the object go', async () => {
    // A copy on the pool's other host, as a define sent by a killed controller leaves one.
    const xml = await bench.hypervisor(KVM).xml(uid);
    await bench.hypervisor(XEN).ensureDefined(xml);
    expect((await bench.domains(XEN)).map((d) => d.uuid)).toContain(uid);
    await bench.kube.delete(
      {
        kind: 'VirtualMachine',
        group: 'virtfleet.io',
        version: 'v1alpha1',
        plural: 'virtualmachines',
        namespaced: true,
      },
      bench.namespace,
      'web',
    );
    await bench.until(() => bench.vm('web') === undefined, 30_000, 'web to be gone');
    expect(await bench.domains(KVM)).toEqual([]);
    expect((await bench.domains(XEN)).map((d) => d.uuid)).not.toContain(uid);
    const current = await bench.untilPool(
      pool,
      (p) => p.status?.hosts?.find((h) => h.name === 'kvm-1')?.vmCount === 0,
      'kvm-1 empty',
    );
    expect(current.status?.hosts?.find((h) => h.name === 'kvm-1')?.allocated).toEqual({ cpus: 0, memory: '0' });
  });
});
