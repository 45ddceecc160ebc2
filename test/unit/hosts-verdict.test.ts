// A host's observations and its verdict (src/hosts/fleet-host.ts): the verdict is replaced whole
// by Fleet.judge, never edited; the VMs hear of the hosts whose readiness changed; and the pool
// status carries heartbeat times only in a write that happens anyway.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Host } from '../../src/api/hostpool.js';
import { libvirtHypervisors } from '../../src/cli/libvirt-hypervisors.js';
import { poolStatus, statusChanged, withHeartbeatTimes } from '../../src/controllers/pool-status.js';
import { Fleet } from '../../src/hosts/fleet.js';
import { nextVerdict, readinessChanged, UNJUDGED, type HostVerdict } from '../../src/hosts/fleet-host.js';

const T = 1_800_000_000_000;
const READY = { ready: true, hypervisor: 'kvm' as const };
const DOWN = { ready: false, reason: 'HeartbeatMissed', message: '3 heartbeats missed' };
const FENCED = { state: 'Fenced' as const, message: 'fence exited 0', attempts: 1, time: '2027-01-15T08:00:00Z' };

describe('nextVerdict', () => {
  it('notes when a host stopped being ready, keeps it while it stays so, and clears it once ready', () => {
    const down = nextVerdict(UNJUDGED, DOWN, undefined, T);
    expect(down.notReadySince).toBe(T);
    const stillDown = nextVerdict(down, DOWN, FENCED, T + 5_000);
    expect(stillDown).toEqual({ readiness: DOWN, fencing: FENCED, notReadySince: T });
    expect(nextVerdict(stillDown, READY, undefined, T + 9_000)).toEqual({
      readiness: READY,
      fencing: undefined,
      notReadySince: undefined,
    });
  });

  it('makes a new, frozen verdict and leaves the previous one as it was', () => {
    const before = nextVerdict(UNJUDGED, DOWN, undefined, T);
    const after = nextVerdict(before, DOWN, FENCED, T + 1);
    expect(after).not.toBe(before);
    expect(before.fencing).toBeUndefined();
    expect(Object.isFrozen(after)).toBe(true);
    expect(Object.isFrozen(after.readiness)).toBe(true);
    expect(Object.isFrozen(after.fencing)).toBe(true);
    expect(() => {
      (after as { fencing: unknown }).fencing = undefined;
    }).toThrow(TypeError);
  });
});

describe('readinessChanged', () => {
  const verdict = (readiness: HostVerdict['readiness']) => nextVerdict(UNJUDGED, readiness, undefined, T);

  it("counts a host's first verdict, even one as not ready as the placeholder it replaces", () => {
    expect(readinessChanged(undefined, verdict(UNJUDGED.readiness))).toBe(true);
  });

  it('counts a change of readiness or hypervisor, not one of message or fencing', () => {
    expect(readinessChanged(verdict(READY), verdict(DOWN))).toBe(true);
    expect(readinessChanged(verdict(READY), verdict({ ready: true, hypervisor: 'xen' }))).toBe(true);
    expect(readinessChanged(verdict(DOWN), verdict({ ...DOWN, message: '4 heartbeats missed' }))).toBe(false);
    expect(readinessChanged(verdict(DOWN), nextVerdict(verdict(DOWN), DOWN, FENCED, T))).toBe(false);
  });
});

describe('Fleet.judge', () => {
  // Hosts with a credentialsSecretRef are not connected until connect(): no libvirt call here.
  const spec = (name: string, uri = `test:///${name}`): Host =>
    ({ name, uri, credentialsSecretRef: { name: 's', namespace: 'n' } }) as Host;
  let fleet: Fleet | undefined;
  afterEach(() => fleet?.close());

  it("replaces a host's verdict whole and tells the VMs of hosts whose readiness changed", () => {
    fleet = new Fleet(libvirtHypervisors());
    fleet.syncPool('p', [spec('a'), spec('b')]);
    const [a, b] = [fleet.host('p', 'a')!, fleet.host('p', 'b')!];
    const told: string[][] = [];
    fleet.onReadinessChange((pool, hosts) => told.push([pool, ...hosts]));

    const first = new Map([
      [a, nextVerdict(a.verdict, READY, undefined, T)],
      [b, nextVerdict(b.verdict, DOWN, undefined, T)],
    ]);
    fleet.judge('p', first);
    expect(told).toEqual([['p', 'a', 'b']]);
    expect(fleet.host('p', 'a')!.verdict).toBe(first.get(a));

    const previous = fleet.host('p', 'b')!.verdict;
    fleet.judge('p', new Map([[b, nextVerdict(previous, DOWN, FENCED, T + 1_000)]]));
    expect(told).toHaveLength(1); // fencing alone changes no readiness
    expect(fleet.host('p', 'b')!.verdict).toEqual({ readiness: DOWN, fencing: FENCED, notReadySince: T });
    expect(previous.fencing).toBeUndefined();

    fleet.judge('p', new Map([[a, nextVerdict(a.verdict, DOWN, undefined, T + 2_000)]]));
    expect(told).toEqual([
      ['p', 'a', 'b'],
      ['p', 'a'],
    ]);
  });

  it('drops the verdict on a host that was replaced meanwhile (a new URI is a new host)', () => {
    fleet = new Fleet(libvirtHypervisors());
    fleet.syncPool('p', [spec('a')]);
    const old = fleet.host('p', 'a')!;
    fleet.syncPool('p', [spec('a', 'test:///elsewhere')]);
    fleet.judge('p', new Map([[old, nextVerdict(old.verdict, READY, undefined, T)]]));
    expect(fleet.host('p', 'a')!.verdict).toBe(UNJUDGED);
  });
});

describe('lastHeartbeatTime', () => {
  const fleetHost = () => {
    const fleet = new Fleet(libvirtHypervisors());
    fleet.syncPool('p', [{ name: 'a', uri: 'test:///a', credentialsSecretRef: { name: 's', namespace: 'n' } } as Host]);
    const host = fleet.host('p', 'a')!;
    fleet.judge('p', new Map([[host, nextVerdict(host.verdict, DOWN, undefined, T)]]));
    return { fleet, host: fleet.host('p', 'a')! };
  };
  const status = (host: ReturnType<typeof fleetHost>['host'], previous?: ReturnType<typeof poolStatus>) =>
    poolStatus({
      generation: 1,
      previous,
      hosts: [host],
      allocations: new Map(),
      blockedRemovals: [],
      now: new Date(T),
    });

  it('is no reason to write: a status that differs only by newer heartbeats is unchanged', async () => {
    const { fleet, host } = fleetHost();
    host.observed.lastAnswerAt = T;
    const written = withHeartbeatTimes(status(host), [host]);
    expect(written.hosts?.[0]?.lastHeartbeatTime).toBe('2027-01-15T08:00:00Z');
    host.observed.lastAnswerAt = T + 60_000; // a minute of heartbeats later
    const next = status(host, written);
    expect(statusChanged(written, next)).toBe(false);
    expect(next.hosts?.[0]?.lastHeartbeatTime).toBe('2027-01-15T08:00:00Z');
    await fleet.close();
  });

  it('goes in with a write that happens anyway, and is kept when no heartbeat answered since a restart', async () => {
    const { fleet, host } = fleetHost();
    host.observed.lastAnswerAt = T;
    const written = withHeartbeatTimes(status(host), [host]);
    host.observed.lastAnswerAt = T + 60_000;
    const changed = { ...status(host, written), readyHosts: 1 };
    expect(statusChanged(written, changed)).toBe(true);
    expect(withHeartbeatTimes(changed, [host]).hosts?.[0]?.lastHeartbeatTime).toBe('2027-01-15T08:01:00Z');
    host.observed.lastAnswerAt = undefined;
    expect(withHeartbeatTimes(changed, [host]).hosts?.[0]?.lastHeartbeatTime).toBe('2027-01-15T08:00:00Z');
    await fleet.close();
  });
});
