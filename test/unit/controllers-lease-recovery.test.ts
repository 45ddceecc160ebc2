// Recovery by lease (src/controllers/vm/lease-recovery.ts): which start failures are evidence of
// a live copy holding the VM's leases, the retry back-off, and the location rule's view of a
// silent host whose copy would hold the leases.
import { describe, expect, it } from '@jest/globals';
import { HypervisorError } from '../../src/hypervisors/hypervisor.js';
import { leaseConflict, leaseRetryMs, recalled } from '../../src/controllers/vm/lease-recovery.js';
import { locate } from '../../src/controllers/vm/location.js';

const URI = 'qemu+tcp://10.250.1.2/system';

describe('leaseConflict', () => {
  it("reads virtlockd's refusal of a held lease", () => {
    const error = new HypervisorError(
      'failed',
      URI,
      'start domain x',
      "resource busy: Lockspace resource 'virtfleet-0b8e6f5e' is locked (VIR_ERR_RESOURCE_BUSY)",
    );
    expect(leaseConflict(error)).toBe(
      "resource busy: Lockspace resource 'virtfleet-0b8e6f5e' is locked (VIR_ERR_RESOURCE_BUSY)",
    );
  });

  it("reads QEMU's image lock held by another QEMU (the disk is open elsewhere), keeping the line that says so", () => {
    const error = new HypervisorError(
      'failed',
      URI,
      'start domain x',
      'internal error: qemu unexpectedly closed the monitor: 2026-12-07T20:00:00.000000Z qemu-system-x86_64: -blockdev {"driver":"qcow2"}: Failed to get "write" lock\nIs another process using the image [/shared/disks/a_data]? (VIR_ERR_INTERNAL_ERROR)',
    );
    expect(leaseConflict(error)).toBe(
      'Failed to get "write" lock Is another process using the image [/shared/disks/a_data]? (VIR_ERR_INTERNAL_ERROR)',
    );
  });

  it('is undefined for failures that say nothing of another copy', () => {
    for (const message of [
      'internal error: process exited while connecting to monitor: qemu-system-x86_64: cannot set up guest memory (VIR_ERR_INTERNAL_ERROR)',
      'Requested operation is not valid: domain is already running (VIR_ERR_OPERATION_INVALID)',
      'Cannot write data: Connection reset by peer (VIR_ERR_SYSTEM_ERROR)',
    ])
      expect(leaseConflict(new HypervisorError('failed', URI, 'start domain x', message))).toBeUndefined();
  });
});

describe('leaseRetryMs', () => {
  it('tries again after 10 s, doubling, at most 2 min', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map(leaseRetryMs)).toEqual([
      10_000, 20_000, 40_000, 80_000, 120_000, 120_000, 120_000,
    ]);
  });
});

describe('recalled (a restarted controller reads a recovery by lease back from status)', () => {
  it('from a refused start: the old host and the tries so far', () => {
    expect(
      recalled([
        {
          type: 'Ready',
          reason: 'RecoveryBlocked',
          message:
            'the VM is not started on rig-1: the start was refused because its leases or disks are held (resource busy), so the old copy on rig-0 is alive and holds them (its host is cut off, not dead). It starts on rig-1 once they are free: … Tried 2 times; next try in 20 s',
        },
      ]),
    ).toEqual({ from: 'rig-0', refusals: 2 });
  });

  it('from the move, before any start', () => {
    expect(
      recalled([
        {
          type: 'Provisioned',
          reason: 'Evacuating',
          message:
            'moving to rig-1: host rig-0 failed and was not fenced (no fencing command, or it failed); its leases decide: the VM starts only where the lock manager grants them',
        },
      ]),
    ).toEqual({ from: 'rig-0', refusals: 0 });
  });

  it('not from a move after fencing, nor from other waits', () => {
    expect(
      recalled([
        { type: 'Provisioned', reason: 'Evacuating', message: 'moving to rig-1: host rig-0 failed and was fenced' },
        {
          type: 'Ready',
          reason: 'RecoveryBlocked',
          message: 'host rig-0 failed (HeartbeatMissed: …); the VM is not started elsewhere because …',
        },
      ]),
    ).toBeUndefined();
    expect(recalled(undefined)).toBeUndefined();
  });
});

describe('locate with a leased host', () => {
  it('a silent host whose copy would hold the leases does not hold a start: the lock manager decides', () => {
    expect(
      locate({
        host: 'rig-0',
        migration: undefined,
        migrating: false,
        sightings: [
          { host: 'rig-0', reach: 'leased' },
          { host: 'rig-1', reach: 'reachable' },
        ],
      }),
    ).toEqual({ kind: 'settled', host: 'rig-0', running: false, copy: false, remove: [] });
  });

  it('a copy seen running elsewhere is still adopted, never started a second time', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: undefined,
      migrating: false,
      sightings: [
        { host: 'rig-0', reach: 'leased' },
        { host: 'rig-1', reach: 'reachable', domain: { state: 'running', reason: 'booted' } },
      ],
    });
    expect(verdict).toMatchObject({ kind: 'settled', host: 'rig-1', running: true });
  });

  it('an unreachable host that is not leased still holds it', () => {
    expect(
      locate({
        host: 'rig-0',
        migration: undefined,
        migrating: false,
        sightings: [
          { host: 'rig-0', reach: 'unreachable' },
          { host: 'rig-1', reach: 'reachable' },
        ],
      }),
    ).toMatchObject({ kind: 'blind', hosts: ['rig-0'] });
  });
});
