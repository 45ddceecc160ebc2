// Recovery by lease, the order of things (simulated hosts): in a pool with spec.leases whose
// failed host HAS a fencing command, fencing comes first — the VM waits (RecoveryPending) while
// the command runs and is not tried elsewhere; once the command failed, the leases decide and
// the VM is started on the other host, with the LeaseAcquired Event. libvirt's test driver
// enforces no lease, so a start there always succeeds: this test is about when the controller
// tries, not about the proof; the rig test (test/e2e/lease-recovery-rig.test.ts) runs the proof
// on real virtlockd.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HOST_POOL } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'a-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const B: HostDecl = { name: 'b-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';

const bench = new ControllerBench('lease-rec', { hostRetryMs: 1_000 });
let fenceScript: string;

beforeAll(async () => {
  await bench.start();
  fenceScript = join(bench.hosts.dir, 'fence-slow.sh');
  // Fails after a while, as a BMC that does not answer does.
  writeFileSync(fenceScript, '#!/bin/sh\nsleep 3\necho "BMC did not answer"\nexit 1\n');
  chmodSync(fenceScript, 0o755);
});

afterAll(() => bench.close());

describe('a failed host of a pool with leases and a fencing command', () => {
  it('is fenced first; once fencing failed, the VM is started on the other host by lease', async () => {
    const leases = { lockspace: join(bench.hosts.dir, 'lockspace'), storagePool: 'lease-rec-leases' };
    const fencing = { method: 'command', command: [fenceScript] };
    const pool = await bench.createPool('leased', [A], { leases });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'A ready');
    await bench.createVm('vm-leased', pool);
    await bench.untilVm('vm-leased', isRunning, 'Running on A');
    const hosts = (a: Record<string, unknown>) => [
      { ...bench.poolSpecHosts([A])[0], ...a, fencing },
      bench.poolSpecHosts([B])[0],
    ];
    await bench.kube.patch(HOST_POOL, undefined, pool, { spec: { hosts: hosts({}) } });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'A and B ready');

    await bench.kube.patch(HOST_POOL, undefined, pool, { spec: { hosts: hosts({ uri: UNREACHABLE_URI }) } });
    // Fencing first: the VM waits for the command, and nothing is made on B meanwhile.
    const pending = await bench.untilVm(
      'vm-leased',
      (v) => condition(v, 'Ready')?.reason === 'RecoveryPending',
      'RecoveryPending while the command runs',
    );
    expect(pending.status?.host).toBe('a-1');
    expect(condition(pending, 'Ready')?.message).toMatch(/^host a-1 failed .*; fencing it \(running .*fence-slow\.sh/);
    expect(await bench.domains(B)).toEqual([]);

    // The command failed: the leases decide, and B's start is granted (the test driver grants all).
    const moved = await bench.untilVm(
      'vm-leased',
      (v) => isRunning(v) && v.status?.host === 'b-1',
      'Running on B',
      30_000,
    );
    const fencingState = bench.pools.get(pool)?.status?.hosts?.find((h) => h.name === 'a-1')?.fencing;
    expect(fencingState).toMatchObject({ state: 'Failed', attempts: 1 });
    expect(moved.status?.restarts).toBe(1);
    expect(condition(moved, 'Scheduled')?.message).toMatch(/moved from failed host a-1/);
    const events = await bench.events('vm-leased');
    const evacuated = events.find((e) => e.reason === 'Evacuated')?.message ?? '';
    expect(evacuated).toMatch(
      /^host a-1 failed and was not fenced \(no fencing command, or it failed\); its leases decide: .*; starting the VM on b-1/,
    );
    const granted = events.filter((e) => e.reason === 'LeaseAcquired').map((e) => e.message);
    expect(granted).toEqual([
      `started on b-1: its lock manager granted the VM's lease virtfleet-${moved.metadata.uid} in lockspace ${leases.lockspace}. ` +
        'A copy running on host a-1 would hold them, so no process there holds them any more: the old copy is gone',
    ]);
    // Once only: the pool's next fencing retry does not move it again.
    expect(events.filter((e) => e.reason === 'Evacuated')).toHaveLength(1);
  });
});
