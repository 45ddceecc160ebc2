import { describe, expect, it } from '@jest/globals';
import { place, type HostState, type PlacementPolicy, type VmRequest } from '../../src/scheduler/placement.js';
import { matchesSelector } from '../../src/scheduler/label-selector.js';

const Gi = 1024 ** 3;
const policy: PlacementPolicy = { strategy: 'spread', cpuOvercommit: 1, memoryOvercommit: 1 };

function host(name: string, overrides: Partial<HostState> = {}): HostState {
  return {
    name,
    ready: true,
    maintenance: false,
    hypervisor: 'kvm',
    labels: {},
    capacity: { cpus: 8, memoryBytes: 16 * Gi },
    allocated: { cpus: 0, memoryBytes: 0 },
    antiAffinityGroups: new Set(),
    ...overrides,
  };
}

const vm = (overrides: Partial<VmRequest> = {}): VmRequest => ({
  vcpus: 2,
  memoryBytes: 4 * Gi,
  hypervisor: 'kvm',
  workload: 'general',
  ...overrides,
});

describe('place', () => {
  it('spreads onto the host with the most free memory, and binpacks onto the fullest that fits', () => {
    const hosts = [
      host('kvm-01', { allocated: { cpus: 2, memoryBytes: 8 * Gi } }),
      host('kvm-02', { allocated: { cpus: 1, memoryBytes: 2 * Gi } }),
    ];
    expect(place(vm(), hosts, policy)).toMatchObject({ placed: true, host: 'kvm-02' });
    expect(place(vm(), hosts, { ...policy, strategy: 'binpack' })).toMatchObject({ placed: true, host: 'kvm-01' });
  });

  it('says for each host why nothing fits', () => {
    const result = place(
      vm({ memoryBytes: 4 * Gi }),
      [
        host('kvm-01', { allocated: { cpus: 0, memoryBytes: 14 * Gi } }),
        host('kvm-02', { ready: false }),
        host('kvm-03', { maintenance: true }),
        host('xen-01', { hypervisor: 'xen' }),
        host('kvm-04', { allocated: { cpus: 7, memoryBytes: 0 } }),
      ],
      policy,
    );
    expect(result).toEqual({
      placed: false,
      reasons: [
        { host: 'kvm-01', reason: 'insufficient memory: need 4Gi, free 2Gi' },
        { host: 'kvm-02', reason: 'not Ready' },
        { host: 'kvm-03', reason: 'in maintenance' },
        { host: 'xen-01', reason: 'is xen, VM needs kvm' },
        { host: 'kvm-04', reason: 'insufficient CPU: need 2, free 1 of 8 (overcommit 1)' },
      ],
      message: expect.stringContaining('kvm-01: insufficient memory: need 4Gi, free 2Gi'),
    });
  });

  it('applies the overcommit ratios', () => {
    const busy = host('kvm-01', {
      capacity: { cpus: 4, memoryBytes: 8 * Gi },
      allocated: { cpus: 4, memoryBytes: 8 * Gi },
    });
    expect(place(vm(), [busy], policy).placed).toBe(false);
    expect(place(vm(), [busy], { ...policy, cpuOvercommit: 2, memoryOvercommit: 1.5 }).placed).toBe(true);
  });

  it('honours host selectors and anti-affinity groups', () => {
    const hosts = [
      host('a', { labels: { rack: 'r1' }, antiAffinityGroups: new Set(['db']) }),
      host('b', { labels: { rack: 'r2' } }),
    ];
    expect(place(vm({ hostSelector: { matchLabels: { rack: 'r1' } } }), hosts, policy)).toMatchObject({
      placed: true,
      host: 'a',
    });
    expect(place(vm({ antiAffinityGroup: 'db' }), hosts, policy)).toMatchObject({ placed: true, host: 'b' });
    const none = place(vm({ antiAffinityGroup: 'db', hostSelector: { matchLabels: { rack: 'r1' } } }), hosts, policy);
    expect(none).toMatchObject({
      placed: false,
      reasons: [
        { host: 'a', reason: 'already runs a VM of anti-affinity group db' },
        { host: 'b', reason: 'labels do not match spec.placement.hostSelector' },
      ],
    });
  });

  describe('hypervisor: auto', () => {
    const pool = [host('kvm-01'), host('xen-01', { hypervisor: 'xen' })];

    it('follows the workload rule table and says why', () => {
      expect(place(vm({ hypervisor: 'auto', workload: 'io' }), pool, policy)).toMatchObject({
        placed: true,
        host: 'xen-01',
        hypervisor: 'xen',
        reason: expect.stringContaining('workload io prefers xen'),
      });
      expect(place(vm({ hypervisor: 'auto', workload: 'compute' }), pool, policy)).toMatchObject({
        placed: true,
        host: 'kvm-01',
        hypervisor: 'kvm',
      });
      expect(place(vm({ hypervisor: 'auto', workload: 'general' }), pool, policy)).toMatchObject({ hypervisor: 'kvm' });
    });

    it('falls back to the other hypervisor when no preferred host fits', () => {
      const fullXen = [host('kvm-01'), host('xen-01', { hypervisor: 'xen', ready: false })];
      expect(place(vm({ hypervisor: 'auto', workload: 'io' }), fullXen, policy)).toMatchObject({
        placed: true,
        hypervisor: 'kvm',
        reason: expect.stringContaining('workload io prefers xen, but no xen host fits; kvm chosen'),
      });
    });

    it('lets a pool override the rule table', () => {
      expect(
        place(vm({ hypervisor: 'auto', workload: 'io' }), pool, {
          ...policy,
          autoRules: { compute: 'kvm', io: 'kvm', general: 'xen' },
        }),
      ).toMatchObject({ hypervisor: 'kvm' });
    });

    it('reports each host by its own reason when nothing fits', () => {
      const tiny = [
        host('kvm-01', { capacity: { cpus: 1, memoryBytes: Gi } }),
        host('xen-01', { hypervisor: 'xen', maintenance: true }),
      ];
      expect(place(vm({ hypervisor: 'auto' }), tiny, policy)).toMatchObject({
        placed: false,
        reasons: [
          { host: 'kvm-01', reason: 'insufficient CPU: need 2, free 1 of 1 (overcommit 1)' },
          { host: 'xen-01', reason: 'in maintenance' },
        ],
      });
    });
  });
});

describe('matchesSelector', () => {
  it('implements In, NotIn, Exists and DoesNotExist', () => {
    const labels = { zone: 'a', ssd: 'true' };
    expect(matchesSelector(labels, { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] })).toBe(
      true,
    );
    expect(matchesSelector(labels, { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] })).toBe(
      false,
    );
    expect(matchesSelector(labels, { matchExpressions: [{ key: 'gpu', operator: 'NotIn', values: ['x'] }] })).toBe(
      true,
    );
    expect(matchesSelector(labels, { matchExpressions: [{ key: 'ssd', operator: 'Exists' }] })).toBe(true);
    expect(matchesSelector(labels, { matchExpressions: [{ key: 'ssd', operator: 'DoesNotExist' }] })).toBe(false);
    expect(matchesSelector(labels, undefined)).toBe(true);
  });
});
