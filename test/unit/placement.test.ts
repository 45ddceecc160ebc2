import { describe, expect, it } from '@jest/globals';
import { place, type HostState, type PlacementPolicy, type VmRequest } from '../../src/scheduler/placement.js';
import { matchesSelector } from '../../src/scheduler/label-selector.js';
import { schedulingPolicy, vmRequest } from '../../src/controllers/vm/placement.js';
import type { PoolObject, VmObject } from '../../src/controllers/resources.js';

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

  describe('anti-affinity modes', () => {
    const hosts = [
      host('a', { antiAffinityGroups: new Set(['db']) }),
      host('b', { antiAffinityGroups: new Set(['db']), allocated: { cpus: 8, memoryBytes: 0 } }),
    ];

    it('Required (and no mode, the old meaning) never shares a host with the group', () => {
      for (const mode of ['Required', undefined] as const) {
        expect(place(vm({ antiAffinityGroup: 'db', antiAffinityMode: mode }), hosts, policy)).toMatchObject({
          placed: false,
          reasons: [
            { host: 'a', reason: 'already runs a VM of anti-affinity group db' },
            { host: 'b', reason: 'already runs a VM of anti-affinity group db' },
          ],
        });
      }
    });

    it('Preferred takes a host without the group first, even against the strategy', () => {
      const pool = [
        host('a', { antiAffinityGroups: new Set(['db']) }),
        host('c', { allocated: { cpus: 0, memoryBytes: 8 * Gi } }),
      ];
      const result = place(vm({ antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' }), pool, policy);
      // spread alone would choose a (more free memory).
      expect(place(vm(), pool, policy)).toMatchObject({ host: 'a' });
      expect(result).toMatchObject({ placed: true, host: 'c' });
      expect(result.placed && result.reason).not.toContain('anti-affinity');
    });

    it('Preferred shares a host with the group when no other fits, and says so', () => {
      expect(place(vm({ antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' }), hosts, policy)).toEqual({
        placed: true,
        host: 'a',
        hypervisor: 'kvm',
        reason:
          'spec.hypervisor is kvm; every fitting kvm host already runs a VM of anti-affinity group db (Preferred), so it shares one; spread chose a',
      });
    });

    it('Preferred does not override the other filters', () => {
      const full = [host('a', { antiAffinityGroups: new Set(['db']), allocated: { cpus: 8, memoryBytes: 0 } })];
      expect(place(vm({ antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' }), full, policy)).toMatchObject({
        placed: false,
        reasons: [{ host: 'a', reason: 'insufficient CPU: need 2, free 0 of 8 (overcommit 1)' }],
      });
    });

    it('Preferred keeps the workload rule first under hypervisor: auto', () => {
      const pool = [host('xen-01', { hypervisor: 'xen', antiAffinityGroups: new Set(['db']) }), host('kvm-01')];
      expect(
        place(
          vm({ hypervisor: 'auto', workload: 'io', antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' }),
          pool,
          policy,
        ),
      ).toMatchObject({
        placed: true,
        host: 'xen-01',
        reason: expect.stringContaining('workload io prefers xen; every fitting xen host'),
      });
      expect(
        place(
          vm({ hypervisor: 'auto', workload: 'io', antiAffinityGroup: 'db', antiAffinityMode: 'Required' }),
          pool,
          policy,
        ),
      ).toMatchObject({
        placed: true,
        host: 'kvm-01',
        reason: expect.stringContaining('but no xen host fits; kvm chosen'),
      });
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

describe('the controller reads the policy from the objects', () => {
  const pool = (scheduling: Partial<PoolObject['spec']['scheduling']>): PoolObject =>
    ({
      spec: { scheduling: { strategy: 'spread', cpuOvercommit: 1, memoryOvercommit: 1, ...scheduling } },
    }) as PoolObject;
  const hosts = [host('kvm-01'), host('xen-01', { hypervisor: 'xen' })];

  it("merges a pool's spec.scheduling.autoHypervisor over the built-in rule table", () => {
    const io = vm({ hypervisor: 'auto', workload: 'io' });
    const general = vm({ hypervisor: 'auto', workload: 'general' });
    expect(place(io, hosts, schedulingPolicy(pool({})))).toMatchObject({ hypervisor: 'xen' });
    const overridden = schedulingPolicy(pool({ autoHypervisor: { io: 'kvm' } }));
    expect(overridden.autoRules).toEqual({ compute: 'kvm', io: 'kvm', general: 'kvm' });
    expect(place(io, hosts, overridden)).toMatchObject({
      hypervisor: 'kvm',
      reason: expect.stringContaining('workload io prefers kvm'),
    });
    expect(place(general, hosts, schedulingPolicy(pool({ autoHypervisor: { general: 'xen' } })))).toMatchObject({
      hypervisor: 'xen',
    });
  });

  it('passes spec.placement.antiAffinityMode on, Required when the object has none', () => {
    const object = (placement: unknown): VmObject =>
      ({
        metadata: { name: 'v' },
        spec: {
          cpu: { cores: 1, sockets: 1, threads: 1 },
          memory: '1Gi',
          hypervisor: 'kvm',
          workload: 'general',
          placement,
        },
      }) as unknown as VmObject;
    expect(vmRequest(object({ antiAffinityGroup: 'db', antiAffinityMode: 'Preferred' }))).toMatchObject({
      antiAffinityGroup: 'db',
      antiAffinityMode: 'Preferred',
    });
    expect(vmRequest(object({ antiAffinityGroup: 'db' }))).toMatchObject({ antiAffinityMode: 'Required' });
    expect(vmRequest(object({ antiAffinityMode: 'Preferred' }))).not.toHaveProperty('antiAffinityMode');
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
