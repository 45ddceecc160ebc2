// Maintenance end to end on real libvirtd hosts (test/rig) with real QEMU guests (issue 6,
// Done 3): two guests live-migrate off a host put in maintenance while their serial output goes
// on — the guest's heartbeat counter continues on the destination, with no new boot — the host
// ends empty, and both VMs report the new host.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { LibvirtConnection, type LibvirtConsole } from '../../src/hypervisors/libvirt/native/index.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { guestImage, READY_MARKER } from '../rig/guest.js';
import { guestVm, hostPool, isRunning, RigController } from './harness.js';

const POOL = 'rig-maint';
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+)/g;
const stack: RigController = new RigController({
  hosts: 2,
  tag: 'maint',
  detail: () => `VMs: ${JSON.stringify(stack.vms.list().map((vm) => [vm.metadata.name, vm.status]))}`,
});
const until = stack.until.bind(stack);
const hostSpec = (i: number, extra: Record<string, unknown> = {}) => stack.poolHost(i, extra);

beforeAll(() => stack.start(), 180_000);

afterAll(async () => {
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

const vm = (name: string) => stack.vm(name);
const ready = (name: string) => isRunning(vm(name));

/** The guest's console output from now on. */
class ConsoleLog {
  text = '';
  private constructor(
    private readonly conn: LibvirtConnection,
    private readonly console: LibvirtConsole,
  ) {}
  static async open(uri: string, uuid: string): Promise<ConsoleLog> {
    const conn = await LibvirtConnection.open(uri);
    const console = await conn.domainOpenConsole(uuid, { force: true });
    const log = new ConsoleLog(conn, console);
    console.onData((data) => {
      log.text += data.toString('latin1');
    });
    return log;
  }
  beats(): number[] {
    return [...this.text.matchAll(HEARTBEAT)].map((match) => Number(match[1]));
  }
  async until(check: () => boolean, ms: number, what: string): Promise<void> {
    for (const deadline = Date.now() + ms; !check();) {
      if (Date.now() > deadline)
        throw new Error(`${what}: not within ${ms} ms; console said: ${this.text.slice(-500)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  async close(): Promise<void> {
    await this.console.close().catch(() => undefined);
    await this.conn.close();
  }
}

describe('a host put in maintenance', () => {
  it('live-migrates its two guests away while their serial output goes on, and ends empty', async () => {
    const image = await guestImage();
    await stack.client.create(HOST_POOL, hostPool(POOL, { hosts: [hostSpec(0)] }));
    for (const name of ['guest-a', 'guest-b']) await stack.client.create(VIRTUAL_MACHINE, guestVm(name, POOL, image));
    await until(() => ready('guest-a') && ready('guest-b'), 120_000, 'both guests Ready on rig-0');
    // Both guests booted and counting, seen on rig-0's consoles.
    const before = await Promise.all(
      ['guest-a', 'guest-b'].map((name) => ConsoleLog.open(stack.rig.hosts[0]!.uri, vm(name)!.metadata.uid ?? '')),
    );
    await Promise.all(before.map((log) => log.until(() => log.beats().length >= 2, 60_000, 'heartbeats on rig-0')));

    const started = Date.now();
    await stack.client.patch(HOST_POOL, undefined, POOL, {
      spec: { hosts: [hostSpec(0, { maintenance: true }), hostSpec(1)] },
    });
    await until(
      () => ['guest-a', 'guest-b'].every((name) => vm(name)?.status?.host === 'rig-1' && ready(name)),
      120_000,
      'both guests on rig-1',
    );
    const took = Date.now() - started;
    const lastOnSource = before.map((log) => Math.max(...log.beats()));
    await Promise.all(before.map((log) => log.close()));

    // The same guests go on counting on rig-1, with no new boot in between.
    for (const [i, name] of ['guest-a', 'guest-b'].entries()) {
      const after = await ConsoleLog.open(stack.rig.hosts[1]!.uri, vm(name)!.metadata.uid ?? '');
      try {
        await after.until(() => after.beats().length >= 2, 30_000, `heartbeats of ${name} on rig-1`);
        const beats = after.beats();
        expect(beats[0]!).toBeGreaterThan(lastOnSource[i]!);
        expect(beats[1]).toBe(beats[0]! + 1);
        expect(after.text).not.toMatch(READY_MARKER);
      } finally {
        await after.close();
      }
      const current = vm(name)!;
      expect((current.status?.conditions as Condition[]).find((c) => c.type === 'Migrating')).toMatchObject({
        status: 'False',
        reason: 'Migrated',
      });
      expect(current.status?.restarts ?? 0).toBe(0);
    }
    // The host in maintenance is empty, and says so.
    const conn = await LibvirtConnection.open(stack.rig.hosts[0]!.uri);
    try {
      expect(await conn.listAllDomains()).toEqual([]);
    } finally {
      await conn.close();
    }
    await until(
      () =>
        (stack.pool(POOL)?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Maintenance')
          ?.reason === 'Drained',
      30_000,
      'pool Drained',
    );
    expect((stack.pool(POOL)?.status?.conditions as Condition[]).find((c) => c.type === 'Maintenance')?.message).toBe(
      'hosts in maintenance: rig-0: empty',
    );
    process.stdout.write(`maintenance drain on the rig: 2 guests migrated off rig-0 in ${took} ms\n`);
  }, 400_000);
});
