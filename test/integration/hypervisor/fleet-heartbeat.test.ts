// One heartbeat into a host's observations (src/hosts/heartbeat.ts), on a Fleet built from the
// libvirt HypervisorFactory, against test-driver hosts and a loopback port nothing listens on:
// facts at first contact, a ping after; a missed beat counts, keeps the last answer's time, and
// says why without the reconnect countdown. The clock is the test's own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Host } from '../../../src/api/hostpool.js';
import { libvirtHypervisors } from '../../../src/cli/libvirt-hypervisors.js';
import { Fleet } from '../../../src/hosts/fleet.js';
import { heartbeat } from '../../../src/hosts/heartbeat.js';
import { testHosts, type TestHosts } from './test-hosts.js';

/** Nothing listens there: connections are refused at once. */
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';
const T = 1_800_000_000_000;

describe('a heartbeat', () => {
  let hosts: TestHosts;
  let fleet: Fleet;
  let clock = T;
  const now = () => clock;
  const beat = (name: string) => {
    const host = fleet.host('p', name)!;
    return heartbeat(
      host,
      { control: fleet.hypervisor(host.uri), heartbeat: fleet.hypervisor(host.uri, 'heartbeat') },
      5_000,
      now,
    );
  };

  beforeAll(async () => {
    hosts = testHosts();
    fleet = new Fleet(libvirtHypervisors());
    // The connection opens with the subscription; its 'connected' event asks for a beat at once
    // (lastBeatAt 0), so the beats below start after it.
    const connected = new Promise<void>((resolve) => {
      const off = fleet.onPoolEvent((_, event) => {
        if (event.type !== 'connected') return;
        off();
        resolve();
      });
    });
    fleet.syncPool('p', [
      { name: 'up', uri: hosts.host('up', { cpus: 3 }), hypervisor: 'kvm' } as Host,
      { name: 'down', uri: UNREACHABLE_URI, hypervisor: 'kvm' } as Host,
    ]);
    await connected;
  });
  afterAll(async () => {
    await fleet.close();
    hosts.cleanup();
  });

  it('reads the facts at first contact, then only pings, and notes when the host answered', async () => {
    const host = fleet.host('p', 'up')!;
    expect(host.observed).toMatchObject({ factsStale: true, lastBeatAt: 0, lastAnswerAt: undefined });

    expect(await beat('up')).toEqual({ answered: true, factsRead: true });
    expect(host.observed).toMatchObject({ factsStale: false, missedBeats: 0, lastBeatAt: T, lastAnswerAt: T });
    expect(host.observed.facts?.cpu.count).toBe(3);

    clock = T + 2_000;
    expect(await beat('up')).toEqual({ answered: true, factsRead: false });
    expect(host.observed).toMatchObject({ lastBeatAt: T + 2_000, lastAnswerAt: T + 2_000, lastError: undefined });
    // Observations only: the verdict is the HostPool controller's, and nobody judged yet.
    expect(host.verdict.readiness).toMatchObject({ ready: false, reason: 'Connecting' });
  });

  it('counts a beat a host does not answer, and says why without the reconnect countdown', async () => {
    const host = fleet.host('p', 'down')!;
    clock = T + 4_000;
    const first = await beat('down');
    expect(first.answered).toBe(false);
    clock = T + 6_000;
    await beat('down');
    expect(host.observed).toMatchObject({ missedBeats: 2, lastBeatAt: T + 6_000, lastAnswerAt: undefined });
    expect(host.observed.lastError).toContain('127.0.0.1:1');
    expect(host.observed.lastError).not.toMatch(/next attempt in/);
    expect(host.observed.facts).toBeUndefined();
  });
});
