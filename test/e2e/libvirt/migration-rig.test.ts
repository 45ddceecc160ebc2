// Live migration through the Hypervisor interface (LibvirtHypervisor on the connection pool),
// between two real libvirtd hosts of the rig (test/rig). The guests boot from a kernel and
// initramfs both hosts see, with no disk (libvirt 9.0 refuses to migrate a disk on a local file
// system, such as the rig's shared directory, without copying it; the copy is tested last but
// one). The guest prints a numbered heartbeat on its console every second
// (test/rig/build-guest.sh), into a log in the rig's shared directory that the destination's
// QEMU appends to: a count that goes on without a gap shows the same guest running on, nothing
// lost or repeated. Needs root (hack/setup.sh).
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isHypervisorError, type Hypervisor, type MigrationProgress } from '../../../src/hypervisors/hypervisor.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { READY_MARKER, guestOnRig, waitForFileMatch, type Guest } from '../../rig/guest.js';
import { GUEST_PRIVATE_DIR, Rig, type RigHost } from '../../rig/rig.js';

const BOOT_MS = 60_000;
const HEARTBEAT = /VIRTFLEET-GUEST-HEARTBEAT n=(\d+) uptime=([0-9.]+)/g;

/** Every heartbeat number in the guest's console log, in order. */
function heartbeats(guest: Guest): number[] {
  const text = existsSync(guest.serialLog) ? readFileSync(guest.serialLog, 'latin1') : '';
  return [...text.matchAll(HEARTBEAT)].map((m) => Number(m[1]));
}

/** Waits (polling the log, with a deadline) for a heartbeat numbered above `n`; returns the highest. */
async function heartbeatAbove(guest: Guest, n: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const beats = heartbeats(guest);
    const last = beats.at(-1) ?? 0;
    if (last > n) return last;
    if (Date.now() > deadline)
      throw new Error(`${guest.name}: no heartbeat above ${n} within ${timeoutMs} ms (last ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The heartbeats so far count 1, 2, 3… without a gap or a repeat: one guest, never restarted. */
function expectUnbrokenCount(guest: Guest): void {
  const beats = heartbeats(guest);
  expect(beats.length).toBeGreaterThan(0);
  expect(beats).toEqual(beats.map((_, i) => i + 1));
}

describe('live migration through the Hypervisor interface on real libvirtd + QEMU hosts', () => {
  let rig: Rig;
  let pool: LibvirtConnectionPool;
  let migrationPool: LibvirtConnectionPool;
  let hostA: RigHost;
  let hostB: RigHost;
  let a: Hypervisor;
  let b: Hypervisor;

  /** Defines and starts the guest on `hv`, and waits for its first heartbeat. */
  async function boot(hv: Hypervisor, name: string, disks?: string[]): Promise<Guest> {
    const guest = await guestOnRig(rig, name, disks ? { disks } : {});
    await hv.ensureDefined(guest.xml);
    await hv.start(guest.uuid);
    await waitForFileMatch(guest.serialLog, READY_MARKER, BOOT_MS);
    await heartbeatAbove(guest, 0, BOOT_MS);
    return guest;
  }

  async function remove(hv: Hypervisor, guest: Guest): Promise<void> {
    await hv.destroy(guest.uuid).catch(() => undefined);
    await hv.undefine(guest.uuid).catch(() => undefined);
  }

  beforeAll(async () => {
    rig = await Rig.start({ hosts: 2 });
    [hostA, hostB] = [rig.hosts[0]!, rig.hosts[1]!];
    pool = new LibvirtConnectionPool();
    // Migrations get connections of their own: the shared ones stay prompt (see the driver).
    migrationPool = new LibvirtConnectionPool();
    a = new LibvirtHypervisor(pool, hostA.uri, { migrationPool });
    b = new LibvirtHypervisor(pool, hostB.uri, { migrationPool });
  }, 120_000);

  afterAll(async () => {
    await pool?.closeAll();
    await migrationPool?.closeAll();
    await rig?.teardown();
  }, 60_000);

  it('migrates two running guests from A to B at once: each runs on B, persistent, is gone from A, and its console goes on counting', async () => {
    const bootAt = Date.now();
    const guests = await Promise.all([boot(a, 'mig-one'), boot(a, 'mig-two')]);
    const bootMs = Date.now() - bootAt;
    const before = guests.map((g) => heartbeats(g).at(-1)!);

    const started = Date.now();
    const took = await Promise.all(
      guests.map(async (g) => {
        const t0 = Date.now();
        await a.migrate(g.uuid, { uri: hostB.uri });
        return Date.now() - t0;
      }),
    );
    const total = Date.now() - started;

    for (const [i, guest] of guests.entries()) {
      // Gone from A (undefined there), running on B.
      expect(await a.lookup(guest.uuid)).toBeUndefined();
      expect(await b.lookup(guest.uuid)).toMatchObject({
        uuid: guest.uuid,
        name: guest.name,
        state: 'running',
        reason: 'migrated',
      });
      expect((await a.listDomains()).map((d) => d.uuid)).not.toContain(guest.uuid);
      // Its console goes on: beats written by B's QEMU after the migration, counting on from
      // where A's left off.
      const atEnd = heartbeats(guest).at(-1)!;
      expect(atEnd).toBeGreaterThanOrEqual(before[i]!);
      await heartbeatAbove(guest, atEnd + 1);
      expectUnbrokenCount(guest);
      expect(await b.migrationProgress(guest.uuid)).toEqual({ active: false });
    }
    // Host A is empty.
    expect(await a.listDomains()).toEqual([]);

    // Persistent on B: destroyed, the definition stays.
    for (const guest of guests) {
      await b.destroy(guest.uuid);
      expect(await b.lookup(guest.uuid)).toMatchObject({ state: 'shutoff' });
      await b.undefine(guest.uuid);
    }
    console.log(
      `two guests booted in ${bootMs} ms, migrated A→B concurrently: ${took.join(' ms, ')} ms each, ${total} ms in all`,
    );
  }, 180_000);

  it('reports progress on both hosts while a (throttled) migration runs; the shared connections stay prompt', async () => {
    const guest = await boot(a, 'mig-progress');
    let settled = false;
    // Aborted if it has not converged in 150 s (a loaded machine): the test then fails, it never hangs.
    const migration = a
      .migrate(guest.uuid, { uri: hostB.uri }, { bandwidthMiBs: 16, timeoutMs: 150_000 })
      .finally(() => {
        settled = true;
      });
    const t0 = Date.now();
    const samples: { at: number; latencyMs: number; out?: MigrationProgress; in?: MigrationProgress }[] = [];
    let domains = 0;
    // Poll until the migration settles, whatever it takes (no sleep decides the outcome; the
    // pause only paces the polling).
    while (!settled) {
      const asked = Date.now();
      const [out, into, list] = await Promise.all([
        a.migrationProgress(guest.uuid),
        b.migrationProgress(guest.uuid),
        a.listDomains(),
      ]);
      samples.push({ at: asked - t0, latencyMs: Date.now() - asked, out, in: into });
      if (list.some((d) => d.uuid === guest.uuid)) domains += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
    await migration;
    const tookMs = Date.now() - t0;

    const active = samples.filter((s) => s.out?.active);
    expect(active.length).toBeGreaterThanOrEqual(3);
    for (const s of active) {
      expect(s.out).toMatchObject({
        active: true,
        direction: 'out',
        dataTotal: expect.any(Number),
        dataProcessed: expect.any(Number),
        dataRemaining: expect.any(Number),
        elapsedMs: expect.any(Number),
      });
    }
    const processed = active.map((s) => s.out!.dataProcessed!);
    const elapsed = active.map((s) => s.out!.elapsedMs!);
    expect(processed).toEqual([...processed].sort((x, y) => x - y));
    expect(elapsed).toEqual([...elapsed].sort((x, y) => x - y));
    expect(processed.at(-1)!).toBeGreaterThan(processed[0]!);
    // The figures fill in once the memory copy has begun (at the very start they are 0).
    expect(active.at(-1)!.out!.dataTotal).toBeGreaterThan(0);
    expect(active.at(-1)!.out!.memIteration).toBeGreaterThanOrEqual(1);
    // The calls answered while the migration ran: promptly, never after one of libvirtd's 5 s
    // keepalive probes (see the last test), whatever the load.
    expect(Math.max(...active.map((s) => s.latencyMs))).toBeLessThan(2_500);
    expect(domains).toBeGreaterThan(0);
    // The destination sees the incoming side.
    expect(samples.some((s) => s.in?.active && s.in.direction === 'in')).toBe(true);
    // Done: gone from A, nothing running on B.
    expect(await a.migrationProgress(guest.uuid)).toBeUndefined();
    expect(await b.migrationProgress(guest.uuid)).toEqual({ active: false });
    expect(await b.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    await heartbeatAbove(guest, heartbeats(guest).at(-1)! + 1);
    expectUnbrokenCount(guest);

    const last = active.at(-1)!.out!;
    const firstFigures = active.find((s) => (s.out!.dataTotal ?? 0) > 0)!;
    console.log(
      `throttled to 16 MiB/s: ${tookMs} ms, ${samples.length} polls (${active.length} active, slowest answer ${Math.max(...samples.map((s) => s.latencyMs))} ms); ` +
        `first figures at ${firstFigures.out!.elapsedMs} ms of the job; last active sample: ${JSON.stringify(last)}`,
    );
    await remove(b, guest);
  }, 180_000);

  it('aborts a migration (abortMigration, then timeoutMs): rejected as aborted, the guest runs on on A; a retry then succeeds', async () => {
    const guest = await boot(a, 'mig-abort');

    // 1 MiB/s: far too slow to finish before the abort.
    const slow = a.migrate(guest.uuid, { uri: hostB.uri }, { bandwidthMiBs: 1 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    let progress = await a.migrationProgress(guest.uuid);
    const deadline = Date.now() + 20_000;
    while (!(progress?.active && (progress.dataProcessed ?? 0) > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      progress = await a.migrationProgress(guest.uuid);
    }
    expect(progress).toMatchObject({ active: true, direction: 'out' });
    const abortAt = Date.now();
    await a.abortMigration(guest.uuid);
    const aborted = await slow;
    const abortMs = Date.now() - abortAt;
    expect(isHypervisorError(aborted, 'aborted')).toBe(true);
    expect((aborted as Error).message).toMatch(/aborted; the domain runs on here/);
    expect(await a.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    expect(await b.lookup(guest.uuid)).toBeUndefined();
    expect(await a.migrationProgress(guest.uuid)).toEqual({ active: false });
    // Nothing left to abort.
    await expect(a.abortMigration(guest.uuid)).rejects.toMatchObject({ kind: 'invalid-state' });

    // The migration's own timeout aborts it the same way.
    const timeoutAt = Date.now();
    const timedOut = await a.migrate(guest.uuid, { uri: hostB.uri }, { bandwidthMiBs: 1, timeoutMs: 1_500 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const timeoutMs = Date.now() - timeoutAt;
    expect(timedOut).toMatchObject({
      kind: 'aborted',
      message: expect.stringMatching(/not finished within 1500 ms: aborted/),
    });
    expect(timeoutMs).toBeGreaterThanOrEqual(1_500);
    expect(await a.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    expect(await b.lookup(guest.uuid)).toBeUndefined();
    const beat = heartbeats(guest).at(-1)!;
    await heartbeatAbove(guest, beat);

    // A retry, unthrottled, goes through.
    const retryAt = Date.now();
    await a.migrate(guest.uuid, { uri: hostB.uri });
    const retryMs = Date.now() - retryAt;
    expect(await a.lookup(guest.uuid)).toBeUndefined();
    expect(await b.lookup(guest.uuid)).toMatchObject({ state: 'running', reason: 'migrated' });
    await heartbeatAbove(guest, heartbeats(guest).at(-1)! + 1);
    expectUnbrokenCount(guest);
    console.log(
      `abort: migrate rejected ${abortMs} ms after abortMigration; timeoutMs 1500: rejected after ${timeoutMs} ms; retry: ${retryMs} ms`,
    );
    await remove(b, guest);
  }, 180_000);

  it('fails a migration to an unreachable destination, a stopped domain and an unknown one, leaving the guest where it was', async () => {
    const guest = await boot(a, 'mig-nowhere');
    // B's address, a port nobody listens on: the source's libvirtd cannot connect.
    const nowhere = `qemu+tcp://${hostB.address}:16599/system`;
    const t0 = Date.now();
    const error = await a.migrate(guest.uuid, { uri: nowhere }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const failMs = Date.now() - t0;
    expect(error).toMatchObject({
      kind: 'failed',
      host: hostA.uri,
      message: expect.stringContaining(`cannot reach the destination ${nowhere} from this host`),
    });
    expect(await a.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    expect(await a.migrationProgress(guest.uuid)).toEqual({ active: false });
    await heartbeatAbove(guest, heartbeats(guest).at(-1)!);
    expectUnbrokenCount(guest);

    // Not running: invalid-state. Unknown: not-found. Bad options: refused before libvirt.
    await a.destroy(guest.uuid);
    await expect(a.migrate(guest.uuid, { uri: hostB.uri })).rejects.toMatchObject({ kind: 'invalid-state' });
    expect(await a.lookup(guest.uuid)).toMatchObject({ state: 'shutoff' });
    await expect(a.migrate(randomUUID(), { uri: hostB.uri })).rejects.toMatchObject({ kind: 'not-found' });
    await expect(a.migrate(guest.uuid, { uri: hostB.uri }, { bandwidthMiBs: 0.5 })).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringContaining('bandwidthMiBs'),
    });
    await expect(a.abortMigration(guest.uuid)).rejects.toMatchObject({ kind: 'invalid-state' });
    expect(await b.lookup(guest.uuid)).toBeUndefined();
    console.log(`unreachable destination: rejected after ${failMs} ms: ${(error as Error).message}`);
    await remove(a, guest);
  }, 120_000);

  it("copies a disk only the source has (copyStorage 'all'): refused without copying, or with no place for it on the destination; then copied", async () => {
    // A path private to each host (under its own /var/lib/libvirt): not shared storage.
    const disk = `${GUEST_PRIVATE_DIR}/copy-disk.raw`;
    const size = 8 << 20;
    const data = randomBytes(size);
    writeFileSync(hostA.privatePath(disk), data);
    const guest = await boot(a, 'mig-copy', [disk]);

    // Not copied: libvirt refuses a disk on a local file system (VIR_ERR_MIGRATE_UNSAFE).
    await expect(a.migrate(guest.uuid, { uri: hostB.uri })).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringContaining('not on storage the destination shares'),
    });
    // Copied, but the destination has no file at that path and no pool over its directory.
    await expect(a.migrate(guest.uuid, { uri: hostB.uri }, { copyStorage: 'all' })).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringContaining("neither a file at a copied disk's path nor a storage pool"),
    });
    expect(await a.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    expect(await b.lookup(guest.uuid)).toBeUndefined();

    // With a file of the same size there, the copy fills it.
    writeFileSync(hostB.privatePath(disk), Buffer.alloc(size));
    const t0 = Date.now();
    await a.migrate(guest.uuid, { uri: hostB.uri }, { copyStorage: 'all' });
    const tookMs = Date.now() - t0;
    expect(await a.lookup(guest.uuid)).toBeUndefined();
    expect(await b.lookup(guest.uuid)).toMatchObject({ state: 'running', reason: 'migrated' });
    expect(readFileSync(hostB.privatePath(disk)).equals(data)).toBe(true);
    await heartbeatAbove(guest, heartbeats(guest).at(-1)! + 1);
    expectUnbrokenCount(guest);
    console.log(`copyStorage 'all' with an 8 MiB disk: ${tookMs} ms`);
    await remove(b, guest);
  }, 120_000);

  it('without a migration pool, the connection the migration uses still answers while it runs (the binding migrates on a thread of its own), after libvirt-client delays', async () => {
    // One connection for everything, as with `new LibvirtHypervisor(pool, uri)`.
    const shared = new LibvirtHypervisor(pool, hostA.uri);
    const bootAt = Date.now();
    const guest = await boot(shared, 'mig-shared');
    const bootMs = Date.now() - bootAt;
    let settled = false;
    const slow = shared.migrate(guest.uuid, { uri: hostB.uri }, { bandwidthMiBs: 1 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    void slow.finally(() => {
      settled = true;
    });
    const latencies: number[] = [];
    const samples: (MigrationProgress | undefined)[] = [];
    while (samples.filter((p) => p?.active && p.direction === 'out').length < 3) {
      const asked = Date.now();
      samples.push(await shared.migrationProgress(guest.uuid));
      latencies.push(Date.now() - asked);
      expect(settled).toBe(false);
      // Paced as a controller would poll (the delays below show with paced calls).
      await new Promise((r) => setTimeout(r, 100));
    }
    const abortAt = Date.now();
    await shared.abortMigration(guest.uuid);
    const abortMs = Date.now() - abortAt;
    expect(await slow).toMatchObject({ kind: 'aborted' });
    const lookupAt = Date.now();
    expect(await shared.lookup(guest.uuid)).toMatchObject({ state: 'running' });
    const lookupMs = Date.now() - lookupAt;
    console.log(
      `one connection for the migration and the rest (boot ${bootMs} ms): progress answered in ${latencies.join(', ')} ms; abortMigration took ${abortMs} ms, then a lookup ${lookupMs} ms`,
    );
    await remove(shared, guest);
  }, 120_000);
});
