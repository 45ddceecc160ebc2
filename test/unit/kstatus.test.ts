// Reconciling and Stalled from the conditions the controllers write (src/controllers/kstatus.ts):
// what kstatus then computes is checked on live objects with the real library in
// test/integration/controllers/kstatus.test.ts.
import { describe, expect, it } from '@jest/globals';
import { poolKstatus, profileKstatus, vmKstatus, withKstatusConditions } from '../../src/controllers/kstatus.js';
import type { Condition } from '../../src/runtime/conditions.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T01:00:00Z');
const c = (type: string, status: Condition['status'], reason: string, message = 'm'): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2025-01-01T00:00:00Z',
});

describe('vmKstatus', () => {
  it('is done for a running VM and for one stopped or paused as asked (Ready=True)', () => {
    expect(vmKstatus([c('Scheduled', 'True', 'Placed'), c('Ready', 'True', 'Running')])).toEqual({ kind: 'done' });
    expect(vmKstatus([c('Ready', 'True', 'Stopped')])).toEqual({ kind: 'done' });
    expect(vmKstatus([c('Ready', 'True', 'PausedByUser')])).toEqual({ kind: 'done' });
  });

  it('is reconciling while Ready is not True, with Ready`s reason, and while a migration runs', () => {
    expect(vmKstatus([c('Ready', 'False', 'Starting', 'starting')])).toEqual({
      kind: 'reconciling',
      reason: 'Starting',
      message: 'Ready: starting',
    });
    expect(vmKstatus([c('Ready', 'False', 'CrashLoopBackOff')])).toMatchObject({ kind: 'reconciling' });
    expect(vmKstatus([c('Ready', 'True', 'Running'), c('Migrating', 'True', 'Migrating')])).toMatchObject({
      kind: 'reconciling',
      reason: 'Migrating',
    });
    expect(vmKstatus(undefined)).toMatchObject({ kind: 'reconciling', reason: 'Pending' });
  });

  it('is stalled when it waits for a person: invalid definition, unschedulable, recovery blocked, a failed install', () => {
    const stalledBy = (...conditions: Condition[]) => vmKstatus(conditions);
    expect(
      stalledBy(c('Provisioned', 'False', 'InvalidDefinition', 'bad'), c('Ready', 'False', 'InvalidDefinition')),
    ).toEqual({ kind: 'stalled', reason: 'InvalidDefinition', message: 'Provisioned: bad' });
    expect(stalledBy(c('Scheduled', 'False', 'Unschedulable'), c('Ready', 'False', 'Unschedulable'))).toMatchObject({
      kind: 'stalled',
      reason: 'Unschedulable',
    });
    expect(stalledBy(c('Ready', 'Unknown', 'RecoveryBlocked'))).toMatchObject({
      kind: 'stalled',
      reason: 'RecoveryBlocked',
    });
    expect(stalledBy(c('Installed', 'False', 'InstallTimedOut'), c('Ready', 'False', 'InstallTimedOut'))).toMatchObject(
      {
        kind: 'stalled',
      },
    );
    // Waiting for the world, not for a person: reconciling.
    expect(
      stalledBy(c('Installed', 'False', 'PreparingInstall'), c('Ready', 'False', 'PreparingInstall')),
    ).toMatchObject({
      kind: 'reconciling',
    });
  });
});

describe('profileKstatus', () => {
  it('is done when Valid, stalled when invalid, reconciling while a Secret is not found', () => {
    expect(profileKstatus(c('Valid', 'True', 'Rendered'))).toEqual({ kind: 'done' });
    expect(profileKstatus(c('Valid', 'False', 'InvalidSpec', 'spec.x: bad'))).toEqual({
      kind: 'stalled',
      reason: 'InvalidSpec',
      message: 'Valid: spec.x: bad',
    });
    expect(profileKstatus(c('Valid', 'False', 'SecretNotFound'))).toMatchObject({ kind: 'reconciling' });
  });
});

describe('poolKstatus', () => {
  it('is done with a host ready, reconciling while hosts connect or a drain runs, stalled when every host is refused', () => {
    const ready = c('Ready', 'True', 'HostsReady');
    const none = c('Ready', 'False', 'NoHostReady', 'no host is ready');
    expect(poolKstatus(ready, [], 1, c('Maintenance', 'False', 'NoMaintenance'))).toEqual({ kind: 'done' });
    expect(poolKstatus(ready, [], 1, c('Maintenance', 'True', 'Draining'))).toMatchObject({
      kind: 'reconciling',
      reason: 'Draining',
    });
    expect(poolKstatus(none, [{ reason: 'Connecting' }], 1, undefined)).toMatchObject({ kind: 'reconciling' });
    expect(poolKstatus(none, [{ reason: 'CredentialsNotFound' }], 1, undefined)).toMatchObject({ kind: 'reconciling' });
    expect(
      poolKstatus(none, [{ reason: 'HypervisorMismatch' }, { reason: 'CredentialsInvalid' }], 2, undefined),
    ).toEqual({
      kind: 'stalled',
      reason: 'NoHostReady',
      message: 'Ready: no host is ready',
    });
    expect(poolKstatus(none, [], 0, undefined)).toMatchObject({ kind: 'stalled' });
  });
});

describe('withKstatusConditions', () => {
  it('sets one of the two, keeps its transition time while it holds, and drops both when done', () => {
    const others = [c('Ready', 'False', 'Starting')];
    const first = withKstatusConditions(others, { kind: 'reconciling', reason: 'Starting', message: 'x' }, 2, T0);
    expect(first.map((x) => [x.type, x.status, x.observedGeneration])).toEqual([
      ['Ready', 'False', undefined],
      ['Reconciling', 'True', 2],
    ]);
    const again = withKstatusConditions(first, { kind: 'reconciling', reason: 'Starting', message: 'x' }, 2, T1);
    expect(again).toEqual(first);
    const stalled = withKstatusConditions(again, { kind: 'stalled', reason: 'Unschedulable', message: 'y' }, 2, T1);
    expect(stalled.map((x) => x.type)).toEqual(['Ready', 'Stalled']);
    expect(withKstatusConditions(stalled, { kind: 'done' }, 2, T1)).toEqual(others);
  });
});
