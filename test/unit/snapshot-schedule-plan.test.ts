// The rolling-checkpoint decisions (schedule-plan.ts): which snapshot is due (named after its
// slot), which are pruned, Ready from the newest settled snapshot.
import { describe, expect, it } from '@jest/globals';
import { planSchedule, slotSnapshotName } from '../../src/controllers/snapshot/schedule-plan.js';
import type { ScheduleObject, SnapshotObject } from '../../src/controllers/snapshot/types.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-07T10:00:00Z');

function schedule(spec: Partial<ScheduleObject['spec']> = {}): ScheduleObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineSnapshotSchedule',
    metadata: { name: 'web-hourly', namespace: 'team', uid: 'u1' },
    spec: { source: { vmName: 'web' }, memory: false, intervalSeconds: 3600, keep: 2, ...spec },
  };
}

function snapshot(name: string, at: number, phase?: string, reason?: string): SnapshotObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineSnapshot',
    metadata: { name, namespace: 'team', creationTimestamp: new Date(at) },
    spec: { source: { vmName: 'web' }, memory: false },
    ...(phase
      ? {
          status: {
            phase: phase as 'Ready',
            conditions: [
              {
                type: 'Ready',
                status: phase === 'Ready' ? 'True' : 'False',
                reason: reason ?? phase,
                message: reason ? `${reason}: the message` : '',
                lastTransitionTime: '2026-12-07T10:00:00Z',
              },
            ],
          },
        }
      : {}),
  } as SnapshotObject;
}

const names = (list: SnapshotObject[]) => list.map((s) => s.metadata.name);

describe('planSchedule', () => {
  it('makes the first snapshot at once, named after the slot, and looks again at the next slot', () => {
    const plan = planSchedule(schedule(), [], T0 + 10 * 60_000);
    expect(plan.create).toBe(`web-hourly-${T0 / 1000}`);
    expect(plan.nextAt).toBe(T0 + HOUR);
    expect(plan.readyCondition).toEqual({
      status: 'False',
      reason: 'InProgress',
      message: 'the first snapshot is being made',
    });
  });

  it("makes nothing while the slot's snapshot exists, or while one is being made", () => {
    const made = snapshot(slotSnapshotName('web-hourly', T0), T0, 'Ready');
    expect(planSchedule(schedule(), [made], T0 + 59 * 60_000).create).toBeUndefined();
    const making = snapshot(slotSnapshotName('web-hourly', T0 - HOUR), T0 - HOUR);
    expect(planSchedule(schedule(), [making], T0 + 1).create).toBeUndefined();
  });

  it('keeps the newest `keep` Ready snapshots and prunes the older ones, oldest first', () => {
    const owned = [0, 1, 2, 3].map((i) =>
      snapshot(slotSnapshotName('web-hourly', T0 + i * HOUR), T0 + i * HOUR, 'Ready'),
    );
    const plan = planSchedule(schedule({ keep: 2 }), owned, T0 + 3 * HOUR + 1);
    expect(names(plan.prune)).toEqual(names(owned.slice(0, 2)));
    expect(plan.ready).toBe(2);
    expect(plan.readyCondition).toEqual({
      status: 'True',
      reason: 'Succeeded',
      message: `snapshot ${owned[3]!.metadata.name} is ready; 2 of 2 kept`,
    });
  });

  it('keeps a Failed snapshot until a newer one is Ready, and says why Ready is False', () => {
    const failed = snapshot('web-hourly-1', T0, 'Failed', 'HostNotReady');
    const failing = planSchedule(schedule(), [failed], T0 + 1);
    expect(failing.prune).toEqual([]);
    expect(failing.readyCondition).toEqual({
      status: 'False',
      reason: 'HostNotReady',
      message: 'snapshot web-hourly-1 failed: HostNotReady: the message; the next is tried at the next interval',
    });
    const ready = snapshot('web-hourly-2', T0 + HOUR, 'Ready');
    expect(names(planSchedule(schedule(), [failed, ready], T0 + HOUR + 1).prune)).toEqual(['web-hourly-1']);
  });

  it('ignores snapshots already being deleted', () => {
    const going = { ...snapshot('web-hourly-0', T0 - HOUR, 'Ready') };
    going.metadata = { ...going.metadata, deletionTimestamp: new Date(T0) };
    const plan = planSchedule(schedule({ keep: 1 }), [going, snapshot('web-hourly-1', T0, 'Ready')], T0 + 1);
    expect(plan.prune).toEqual([]);
    expect(plan.ready).toBe(1);
  });

  it('makes nothing and has no next time while suspended', () => {
    const plan = planSchedule(schedule({ suspend: true }), [], T0);
    expect(plan.create).toBeUndefined();
    expect(plan.nextAt).toBeUndefined();
    expect(plan.readyCondition.message).toBe('suspended before its first snapshot');
  });

  it('shortens a long schedule name so that snapshot names stay within 253 characters', () => {
    const long = 'a'.repeat(253);
    expect(slotSnapshotName(long, T0).length).toBeLessThanOrEqual(253);
  });
});
