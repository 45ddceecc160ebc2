// When a failed host's VM may be started elsewhere (src/controllers/vm/recovery.ts, verdict):
// after fencing; by lease in a pool with spec.leases when there is no fencing command or it
// failed; never by lease while fencing runs or while a live migration is recorded.
import { describe, expect, it } from '@jest/globals';
import type { HostFencing } from '../../src/hosts/fleet.js';
import type { PoolObject, VmObject } from '../../src/controllers/resources.js';
import type { VmKit } from '../../src/controllers/vm/kit.js';
import type { PlacementStep } from '../../src/controllers/vm/placement.js';
import { RecoveryStep } from '../../src/controllers/vm/recovery.js';

const FAILED_AT = 1_000;

/** A RecoveryStep over one failed host rig-0, as the HostPool controller judged it. */
function step(fencing: HostFencing | undefined): RecoveryStep {
  const host = {
    name: 'rig-0',
    verdict: {
      readiness: { ready: false, reason: 'HeartbeatMissed', message: '3 heartbeats missed' },
      fencing,
      notReadySince: FAILED_AT,
    },
  };
  const kit = { options: { fleet: { host: () => host } }, now: () => 5_000 } as unknown as VmKit;
  return new RecoveryStep(kit, {} as PlacementStep);
}

function pool(options: { leases?: boolean; fencing?: boolean }): PoolObject {
  return {
    metadata: { name: 'p' },
    spec: {
      hosts: [
        {
          name: 'rig-0',
          uri: 'qemu+tcp://h/system',
          ...(options.fencing ? { fencing: { method: 'command', command: ['/bin/fence'] } } : {}),
        },
      ],
      storage: { pool: 'default', shared: true },
      ...(options.leases ? { leases: { lockspace: '/srv/lockspace', storagePool: 'virtfleet-leases' } } : {}),
    },
  } as unknown as PoolObject;
}

const vm = {
  metadata: { name: 'v', namespace: 'n', uid: 'u' },
  spec: { runStrategy: 'Always', recovery: { evacuate: true }, hostPoolRef: { name: 'p' } },
} as unknown as VmObject;
const placement = { host: 'rig-0', hypervisor: 'kvm' as const };

describe('RecoveryStep.verdict', () => {
  it('without fencing or leases: waits, no_fencing', () => {
    expect(step(undefined).verdict(vm, pool({}), placement)).toMatchObject({
      go: false,
      reason: 'RecoveryBlocked',
      metric: 'no_fencing',
    });
  });

  it('with leases and no fencing command: tried elsewhere by lease at once', () => {
    expect(step(undefined).verdict(vm, pool({ leases: true }), placement)).toEqual({
      go: true,
      failedAt: FAILED_AT,
      proof: 'lease',
      from: 'rig-0',
    });
  });

  it('with leases and a fencing command: fencing first, by lease once it failed, fenced once it succeeded', () => {
    const leasedAndFenced = pool({ leases: true, fencing: true });
    const running: HostFencing = {
      state: 'Fencing',
      message: 'running /bin/fence (attempt 1)',
      attempts: 1,
      time: '2026-12-07T20:00:00Z',
    };
    expect(step(running).verdict(vm, leasedAndFenced, placement)).toMatchObject({
      go: false,
      reason: 'RecoveryPending',
    });
    expect(step(undefined).verdict(vm, leasedAndFenced, placement)).toMatchObject({ go: false });
    const failed: HostFencing = {
      state: 'Failed',
      message: '/bin/fence exited 1',
      attempts: 1,
      time: '2026-12-07T20:00:00Z',
    };
    expect(step(failed).verdict(vm, leasedAndFenced, placement)).toMatchObject({ go: true, proof: 'lease' });
    const fenced: HostFencing = {
      state: 'Fenced',
      message: '/bin/fence exited 0',
      attempts: 1,
      time: '2026-12-07T20:00:00Z',
    };
    expect(step(fenced).verdict(vm, leasedAndFenced, placement)).toMatchObject({ go: true, proof: 'fenced' });
  });

  it('with leases, during a recorded live migration: waits for the location rule', () => {
    const verdict = step(undefined).verdict(vm, pool({ leases: true }), placement, {
      source: 'rig-0',
      target: 'rig-1',
    });
    expect(verdict).toMatchObject({ go: false, reason: 'RecoveryBlocked', metric: 'no_fencing' });
    expect(verdict && !verdict.go ? verdict.message : '').toMatch(/during a live migration to rig-1/);
  });
});
