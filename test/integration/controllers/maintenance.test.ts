// Maintenance and `virtfleet vm migrate` on simulated hosts. libvirt's test driver cannot
// migrate (the real rig does: test/e2e/maintenance-rig.test.ts), so this covers what happens
// around a migration: a host in maintenance takes no new VMs and its running VMs are asked to
// move, a refused migration is retried and reported, the pool says how far the drain is, and
// requests that cannot be done are refused with the reason.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CliError, runAction } from '../../../src/cli/vm.js';
import { HOST_POOL } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'a-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const B: HostDecl = { name: 'b-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };

const bench = new ControllerBench('maint', { hostRetryMs: 1_000 });
let pool = '';

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('maint', [A]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'A ready');
  await bench.createVm('mover', pool);
  await bench.untilVm('mover', isRunning, 'Running on A');
  await setHosts({ maintenance: false });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'A and B ready');
});

afterAll(() => bench.close());

async function setHosts(a: Record<string, unknown>): Promise<void> {
  const [specA, specB] = bench.poolSpecHosts([A, B]);
  await bench.kube.patch(HOST_POOL, undefined, pool, { spec: { hosts: [{ ...specA, ...a }, specB] } });
}

const flags = (extra: Record<string, unknown> = {}) => ({
  namespace: bench.namespace,
  wait: true,
  timeout: '30',
  ...extra,
});

describe('virtfleet vm migrate', () => {
  it('refuses a destination that is not in the pool, naming it', async () => {
    const error = await runAction('migrate', 'mover', flags({ to: 'nope' }), () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toBe(
      `migrate refused: no host nope in HostPool ${pool} other than the VM's own (a-1)`,
    );
    expect(bench.vm('mover')?.status?.host).toBe('a-1');
  });

  it('refuses to migrate a stopped VM', async () => {
    await bench.createVm('parked', pool, { runStrategy: 'Halted' });
    await bench.untilVm('parked', (v) => v.status?.phase === 'Stopped', 'Stopped');
    const error = await runAction('migrate', 'parked', flags(), () => undefined).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^migrate refused: the VM is not running \(domain shutoff\); live migration moves a running VM$/,
    );
  });
});

describe('a host in maintenance', () => {
  it('takes no new VMs, tries to move its running VM, and reports the refused migration', async () => {
    await setHosts({ maintenance: true });
    const vm = await bench.untilVm(
      'mover',
      (v) => condition(v, 'Migrating')?.reason === 'MigrationFailed',
      'the first attempt failed',
    );
    expect(condition(vm, 'Migrating')?.status).toBe('False');
    expect(condition(vm, 'Migrating')?.message).toMatch(
      /^migration from a-1 to b-1 failed \(attempt 1 of 3\): .+; retrying$/,
    );
    expect(vm.status?.host).toBe('a-1');
    expect(vm.status?.phase).toBe('Running');
    expect(vm.status?.migration).toBeUndefined();
    expect((await bench.events('mover')).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['MigrationStarted', 'MigrationFailed']),
    );
    const failures = await bench.manager!.metrics.migrations.get();
    expect(failures.values.find((v) => v.labels.outcome === 'failure')?.value).toBeGreaterThanOrEqual(1);

    // While the attempt ran it said "1 migrating"; after it, only what is left.
    const drained = await bench.untilPool(
      pool,
      (p) => condition(p, 'Maintenance')?.message === 'hosts in maintenance: a-1: 1 VM left',
      'Maintenance: 1 VM left',
    );
    expect(condition(drained, 'Maintenance')).toMatchObject({ status: 'True', reason: 'Draining' });

    await bench.createVm('newcomer', pool);
    const placed = await bench.untilVm('newcomer', isRunning, 'the new VM Running');
    expect(placed.status?.host).toBe('b-1');
  });

  it('says the host is empty once nothing is placed there, and is cleared with maintenance', async () => {
    await bench.kube.delete(
      {
        kind: 'VirtualMachine',
        group: 'virtfleet.io',
        version: 'v1alpha1',
        plural: 'virtualmachines',
        namespaced: true,
      },
      bench.namespace,
      'mover',
    );
    await bench.until(() => !bench.vm('mover'), 30_000, 'mover gone');
    const parkedOnA = bench.vm('parked')?.status?.host === 'a-1';
    if (!parkedOnA) {
      const empty = await bench.untilPool(pool, (p) => condition(p, 'Maintenance')?.reason === 'Drained', 'Drained');
      expect(condition(empty, 'Maintenance')?.message).toBe('hosts in maintenance: a-1: empty');
    }
    await setHosts({ maintenance: false });
    const done = await bench.untilPool(pool, (p) => condition(p, 'Maintenance')?.status === 'False', 'no maintenance');
    expect(condition(done, 'Maintenance')?.reason).toBe('NoMaintenance');
  });
});
