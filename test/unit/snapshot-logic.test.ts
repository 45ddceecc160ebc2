// The pure parts of the snapshot and restore controllers: the logical clock of a cut, the status
// they write (phase, readyToUse, Ready, kstatus's Reconciling/Stalled), raw-disk detection in a
// domain definition, what a VM does after a revert, and the refusal of a migrating VM.
import { describe, expect, it } from '@jest/globals';
import { defaultSnapshotName } from '../../src/cli/snapshot.js';
import { nextLogicalClock } from '../../src/controllers/snapshot/cut.js';
import { rawDisks } from '../../src/controllers/snapshot/raw-disks.js';
import { afterRevert } from '../../src/controllers/snapshot/restore-revert.js';
import { restoreStatus, snapshotStatus, listed } from '../../src/controllers/snapshot/status.js';
import { restoreRefusal } from '../../src/controllers/snapshot/restore-checks.js';
import { vmRefusal } from '../../src/controllers/snapshot/members.js';
import { volumeNameOf } from '../../src/controllers/vm-storage.js';
import type { VmObject } from '../../src/controllers/resources.js';
import type { SnapshotVmEntry } from '../../src/api/virtualmachinesnapshot.js';
import { Fleet } from '../../src/hosts/fleet.js';
import { libvirtHypervisors } from '../../src/cli/libvirt-hypervisors.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T01:00:00Z');

interface VmOverrides {
  metadata?: VmObject['metadata'];
  spec?: Partial<VmObject['spec']>;
  status?: unknown;
}

function vm(overrides: VmOverrides = {}): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    ...overrides,
    metadata: { name: 'web', namespace: 'team', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', ...overrides.metadata },
    spec: { hostPoolRef: { name: 'pool' }, runStrategy: 'Always', ...overrides.spec } as VmObject['spec'],
  } as VmObject;
}

const entry = (over: Partial<SnapshotVmEntry> = {}): SnapshotVmEntry => ({
  vm: 'web',
  uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  host: 'h1',
  pool: 'pool',
  snapshotName: 'vmsnap-x',
  state: 'Captured',
  memory: true,
  consistency: 'Memory',
  ...over,
});

describe('nextLogicalClock', () => {
  it('is 1 for the first cut, and one more than every earlier cut sharing a VM', () => {
    expect(nextLogicalClock([], ['a', 'b'])).toBe(1);
    const earlier = [
      { vmUids: ['a', 'b'], clock: 1 },
      { vmUids: ['c'], clock: 7 },
      { vmUids: ['b', 'd'], clock: 3 },
    ];
    expect(nextLogicalClock(earlier, ['a'])).toBe(2);
    expect(nextLogicalClock(earlier, ['a', 'd'])).toBe(4);
    expect(nextLogicalClock(earlier, ['c', 'a'])).toBe(8);
    // A group sharing no VM with earlier cuts is not ordered after them.
    expect(nextLogicalClock(earlier, ['e'])).toBe(1);
  });
});

describe('snapshotStatus', () => {
  it('is Ready and readyToUse with Ready=True and neither Reconciling nor Stalled', () => {
    const status = snapshotStatus(
      undefined,
      3,
      {
        phase: 'Ready',
        reason: 'Succeeded',
        message: 'captured',
        vms: [entry()],
        cut: { logicalClock: 2, pauseWindowMs: 40 },
      },
      T0,
    );
    expect(status).toMatchObject({ phase: 'Ready', readyToUse: true, observedGeneration: 3, cut: { logicalClock: 2 } });
    expect(status.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Succeeded',
        message: 'captured',
        observedGeneration: 3,
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ]);
  });

  it('is reconciling while in progress, and stalled once Failed, keeping the entries written before', () => {
    const going = snapshotStatus(
      undefined,
      1,
      { phase: 'InProgress', reason: 'InProgress', message: 'capturing web', vms: [entry({ state: 'Pending' })] },
      T0,
    );
    expect(going.readyToUse).toBe(false);
    expect(going.conditions?.find((c) => c.type === 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'InProgress',
      message: 'Ready: capturing web',
    });
    const failed = snapshotStatus(going, 1, { phase: 'Failed', reason: 'RawDisk', message: 'disk data is raw' }, T1);
    expect(failed.vms).toEqual(going.vms);
    expect(failed.conditions?.map((c) => c.type)).toEqual(['Ready', 'Stalled']);
    expect(failed.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ reason: 'RawDisk' });
    // Ready stayed False: its transition time is the first one.
    expect(failed.conditions?.[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });
});

describe('restoreStatus', () => {
  it('says Succeeded with a completion time, PartiallyReverted as reconciling', () => {
    const partial = restoreStatus(
      undefined,
      1,
      {
        phase: 'InProgress',
        reason: 'PartiallyReverted',
        message: 'reverted: a; not yet: b',
        vms: [
          { vm: 'a', state: 'Reverted' },
          { vm: 'b', state: 'Failed', message: 'host down' },
        ],
      },
      T0,
    );
    expect(partial.conditions?.find((c) => c.type === 'Reconciling')?.reason).toBe('PartiallyReverted');
    const done = restoreStatus(
      partial,
      1,
      { phase: 'Succeeded', reason: 'Succeeded', message: 'reverted a and b', completionTime: '2026-01-01T01:00:00Z' },
      T1,
    );
    expect(done).toMatchObject({ phase: 'Succeeded', completionTime: '2026-01-01T01:00:00Z' });
    expect(done.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=True']);
  });

  it('lists names readably', () => {
    expect(listed(['a'])).toBe('a');
    expect(listed(['a', 'b', 'c'])).toBe('a, b and c');
  });
});

describe('rawDisks', () => {
  const web = vm({ spec: { disks: [{ name: 'root' }, { name: 'data' }] } as never });
  const file = (disk: string) => `/var/lib/virtfleet/${volumeNameOf(web, disk)}`;
  const xml = (disks: string) => `<domain><devices>${disks}</devices></domain>`;

  it('names the writable raw disks by their spec name, and ignores qcow2, read-only disks and CD-ROMs', () => {
    const found = rawDisks(
      xml(
        `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${file('root')}'/><target dev='vda'/></disk>` +
          `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${file('data')}'/><target dev='vdb'/></disk>` +
          `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/srv/ro.img'/><target dev='vdc'/><readonly/></disk>` +
          `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/srv/seed.iso'/><target dev='sda'/><readonly/></disk>`,
      ),
      web,
    );
    expect(found).toEqual([{ disk: 'data', file: file('data') }]);
  });

  it('falls back to the guest device for a raw disk the spec does not name', () => {
    const found = rawDisks(
      xml(
        `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/srv/x.img'/><target dev='vdd'/></disk>`,
      ),
      web,
    );
    expect(found).toEqual([{ disk: 'vdd', file: '/srv/x.img' }]);
  });
});

describe('afterRevert', () => {
  it('follows holds first, then runStrategy; Manual runs what was running in the snapshot', () => {
    expect(afterRevert(vm(), entry())).toBe('run');
    expect(afterRevert(vm({ spec: { runStrategy: 'Halted' } }), entry())).toBe('stopped');
    expect(afterRevert(vm({ spec: { runStrategy: 'Manual' } }), entry())).toBe('run');
    expect(afterRevert(vm({ spec: { runStrategy: 'Manual' } }), entry({ consistency: 'Stopped' }))).toBe('stopped');
    const held = (action: string) => vm({ metadata: { annotations: { 'virtfleet.io/action': action } } });
    expect(afterRevert(held('stop'), entry())).toBe('stopped');
    expect(afterRevert(held('suspend'), entry())).toBe('stopped');
    expect(afterRevert(held('pause'), entry())).toBe('paused');
  });
});

describe('refusals of a migrating VM', () => {
  // No host is consulted for these: the VM's own status refuses first.
  const fleet = new Fleet(libvirtHypervisors());
  const migrating = vm({
    status: { host: 'h1', migration: { source: 'h1', target: 'h2', started: '2026-01-01T00:00:00Z' } },
  } as never);

  it('refuses a snapshot, naming the VM, both hosts and what to do', () => {
    expect(vmRefusal(migrating, fleet)).toEqual({
      reason: 'VmMigrating',
      message:
        'VirtualMachine web is live-migrating from h1 to h2: wait until its migration ends, then create the snapshot again',
    });
  });

  it('refuses a restore, naming the VM, both hosts and what to do', () => {
    expect(restoreRefusal(entry(), migrating, fleet)).toEqual({
      reason: 'VmMigrating',
      message: 'VirtualMachine web is live-migrating from h1 to h2: wait until its migration ends, then restore again',
    });
  });

  it('refuses a restore of a VM made again under the same name (a new UID)', () => {
    expect(restoreRefusal(entry({ uid: 'other' }), vm(), fleet)?.reason).toBe('VmReplaced');
  });
});

describe('defaultSnapshotName', () => {
  it('is the VM name and the UTC time, a valid object name', () => {
    expect(defaultSnapshotName('web', new Date('2026-12-07T17:18:05.123Z'))).toBe('web-20261207-171805');
  });
});
