// The binding against real libvirtd daemons, each a simulated host in its own
// network and mount namespaces (test/rig), running real QEMU/TCG guests.
// Needs root; the guest is built by test/rig/build-guest.sh (hack/setup.sh).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection, isLibvirtError } from '../../../src/hypervisors/libvirt/native/index.js';
import { GuestShell, READY_MARKER, guestOnRig, waitForFileMatch, type Guest } from '../../rig/guest.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Rig, type RigHost } from '../../rig/rig.js';
import { closeEvent, lifecycleEvent } from '../../rig/waiters.js';

const BOOT_MS = 60_000;

describe('libvirt binding on real libvirtd + QEMU hosts', () => {
  let rig: Rig;
  const connections: LibvirtConnection[] = [];

  async function open(uri: string): Promise<LibvirtConnection> {
    const conn = await LibvirtConnection.open(uri);
    connections.push(conn);
    return conn;
  }

  /** Defines and starts the guest, and waits for its ready marker. */
  async function boot(conn: LibvirtConnection, guest: Guest): Promise<number> {
    await conn.defineXML(guest.xml);
    await conn.domainCreate(guest.uuid);
    const match = await waitForFileMatch(guest.serialLog, READY_MARKER, BOOT_MS);
    return Number(match[1]);
  }

  beforeAll(async () => {
    rig = await Rig.start({ hosts: 2 });
  }, 120_000);

  afterAll(async () => {
    for (const host of rig?.hosts ?? []) {
      try {
        host.thaw();
      } catch {
        // not running any more
      }
    }
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
    await rig?.teardown();
  }, 60_000);

  it('boots the tiny guest, which prints its ready marker and answers commands', async () => {
    const conn = await open(rig.hosts[0]!.uri);
    expect(await conn.getType()).toBe('QEMU');
    const guest = await guestOnRig(rig, 'boot');
    const started = lifecycleEvent(conn, guest.uuid, 'started', BOOT_MS);
    const uptime = await boot(conn, guest);
    expect(uptime).toBeGreaterThan(0);
    expect((await started).detail).toBe('booted');
    expect(await conn.domainGetState(guest.uuid)).toMatchObject({ state: 'running', reason: 'booted' });

    const shell = await GuestShell.connect(guest.commandSocket(rig.hosts[0]!));
    try {
      const { output, rc } = await shell.run('cat /proc/1/cmdline; echo; uname -s');
      expect(rc).toBe(0);
      expect(output).toContain('Linux');
      expect((await shell.run('false')).rc).toBe(1);
    } finally {
      shell.close();
    }
    await conn.domainDestroy(guest.uuid);
    await conn.domainUndefine(guest.uuid);
  }, 120_000);

  it('reports a QEMU killed with SIGKILL as stopped/failed, and the domain as shutoff/crashed', async () => {
    const host = rig.hosts[0]!;
    const conn = await open(host.uri);
    const guest = await guestOnRig(rig, 'crash');
    await boot(conn, guest);

    const stopped = lifecycleEvent(conn, guest.uuid, 'stopped', 10_000);
    process.kill(host.qemuPid(guest.name), 'SIGKILL');
    const event = await stopped;
    // What libvirt 9.0 reports when QEMU dies under it.
    expect(event).toMatchObject({ event: 'stopped', detail: 'failed', domain: { uuid: guest.uuid, name: guest.name } });
    expect(await conn.domainGetState(guest.uuid)).toMatchObject({ state: 'shutoff', reason: 'crashed' });
    await conn.domainUndefine(guest.uuid);
  }, 120_000);

  it('reports a frozen libvirtd closed by keepalive within interval × (count + 1), while another host keeps answering', async () => {
    const [frozen, other] = [rig.hosts[0]!, rig.hosts[1]!];
    const conn = await open(frozen.uri);
    const otherConn = await open(other.uri);
    const interval = 1;
    const count = 2;
    expect(await conn.setKeepAlive(interval, count)).toBe(true);
    const bound = interval * (count + 1) * 1000;

    const closed = closeEvent(conn, bound + 5_000);
    frozen.freeze();
    const frozenAt = Date.now();
    try {
      // A call made to the frozen host hangs until the close ends it.
      const pending = conn.getHostname().then(
        () => 'answered',
        (error: unknown) => error,
      );
      // Meanwhile the other host answers, again and again.
      let answers = 0;
      let done = false;
      void closed.finally(() => {
        done = true;
      });
      while (!done) {
        expect(await otherConn.getHostname()).toBeTruthy();
        await otherConn.listAllDomains();
        answers += 1;
      }
      const event = await closed;
      const elapsed = Date.now() - frozenAt;
      expect(event.reason).toBe('keepalive');
      expect(elapsed).toBeLessThan(bound + 2_000);
      expect(answers).toBeGreaterThan(10);
      const late = await pending;
      expect(isLibvirtError(late)).toBe(true);
      console.log(
        `keepalive ${interval}s×(${count}+1): closed after ${elapsed} ms; ${answers} rounds of calls to the other host meanwhile; pending call: ${String((late as Error).message)}`,
      );
    } finally {
      frozen.thaw();
    }
    // Thawed, the host serves new connections again.
    const again = await open(frozen.uri);
    expect(await again.getType()).toBe('QEMU');
  }, 60_000);

  /** `ip route get ADDRESS` in the root namespace: the route line, or the error ip printed. */
  async function routeGet(address: string): Promise<string> {
    return promisify(execFile)('ip', ['route', 'get', address]).then(
      ({ stdout }) => stdout.split('\n')[0]!.trim(),
      (error: { stderr?: string }) => `error: ${(error.stderr ?? '').trim()}`,
    );
  }

  it('keeps every rig address on the machine when a link goes down: unreachable, never the default route', async () => {
    const down = rig.hosts[1]!;
    const up = rig.hosts[0]!;
    // Both ends of every host's /30, and an unused address of the range.
    const outer = (host: RigHost) => host.address.replace(/\.2$/, '.1');
    const unused = '10.250.255.254';
    await down.cutLink('link');
    try {
      expect(await routeGet(down.address)).toBe('error: RTNETLINK answers: No route to host');
      expect(await routeGet(unused)).toBe('error: RTNETLINK answers: No route to host');
      // The other host is still reached over its own veth.
      expect(await routeGet(up.address)).toMatch(
        new RegExp(`^${up.address.replace(/\./g, '\\.')} dev vfr\\d+o src ${outer(up).replace(/\./g, '\\.')}`),
      );
      for (const host of rig.hosts) {
        for (const address of [host.address, outer(host)])
          expect(await routeGet(address)).not.toMatch(/ via |dev eth|dev en/);
      }
    } finally {
      await down.restoreLink('link');
    }
    expect(await routeGet(down.address)).toMatch(/ dev vfr\d+o /);
  });

  it.each(['link', 'iptables'] as const)(
    'partitions a host (%s cut): the connection closes by keepalive, its guest keeps running',
    async (method) => {
      const host = rig.hosts[1]!;
      const conn = await open(host.uri);
      const guest = await guestOnRig(rig, `partition-${method}`);
      await boot(conn, guest);
      expect(await conn.setKeepAlive(1, 2)).toBe(true);

      const closed = closeEvent(conn, 10_000);
      await host.cutLink(method);
      try {
        expect((await closed).reason).toBe('keepalive');
        if (method === 'link') {
          // No route: a new connection fails at once. (Behind a DROP, its SYNs
          // go unanswered and libvirt's connect waits for TCP to give up.)
          await expect(LibvirtConnection.open(host.uri)).rejects.toMatchObject({ domainName: 'VIR_FROM_RPC' });
        }
        // The guest is reached through its command socket, not the network.
        const shell = await GuestShell.connect(guest.commandSocket(host));
        try {
          expect(await shell.run('echo alive')).toEqual({ output: 'alive\n', rc: 0 });
        } finally {
          shell.close();
        }
      } finally {
        await host.restoreLink(method);
      }
      const again = await open(host.uri);
      expect(await again.domainGetState(guest.uuid)).toMatchObject({ state: 'running' });
      await again.domainDestroy(guest.uuid);
      await again.domainUndefine(guest.uuid);
    },
    120_000,
  );

  it('keeps a disk lease in the shared lockspace: held by the first host virtlockd, refused to a second host until released', async () => {
    const [first, second] = [rig.hosts[0]!, rig.hosts[1]!];
    const a = await open(first.uri);
    const b = await open(second.uri);
    const disk = join(rig.sharedDir, 'lease-disk.raw');
    writeFileSync(disk, Buffer.alloc(1 << 20));
    const guest = await guestOnRig(rig, 'lease', { disks: [disk] });
    await a.defineXML(guest.xml);
    await a.domainCreate(guest.uuid);

    // virtlockd's lease: a file in the shared lockspace, fcntl-locked by the
    // first host's virtlockd.
    const leases = readdirSync(rig.lockspaceDir);
    expect(leases).toHaveLength(1);
    const holders = lockHolders(join(rig.lockspaceDir, leases[0]!));
    const virtlockd = first.pids().filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'virtlockd');
    expect(holders).toEqual(virtlockd);

    // The same disk on the second host is refused. (On one kernel QEMU's own
    // image lock refuses it first, before libvirt asks virtlockd, which it
    // does only when the CPUs start.)
    await b.defineXML(guest.xml);
    await expect(b.domainCreate(guest.uuid)).rejects.toMatchObject({ message: expect.stringMatching(/lock/i) });

    await a.domainDestroy(guest.uuid);
    // Released: virtlockd unlocks (and removes) the lease file.
    expect(lockHolders(join(rig.lockspaceDir, leases[0]!))).toEqual([]);
    await b.domainCreate(guest.uuid);
    const virtlockd2 = second.pids().filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'virtlockd');
    expect(readdirSync(rig.lockspaceDir)).toEqual(leases);
    expect(lockHolders(join(rig.lockspaceDir, leases[0]!))).toEqual(virtlockd2);
    await b.domainDestroy(guest.uuid);
    await a.domainUndefine(guest.uuid);
    await b.domainUndefine(guest.uuid);
  }, 120_000);

  it('live-migrates a guest peer-to-peer; job stats and abort answer on the same connection while it runs', async () => {
    const [source, destination] = [rig.hosts[0]!, rig.hosts[1]!];
    const a = await open(source.uri);
    const b = await open(destination.uri);
    const guest = await guestOnRig(rig, 'migrate');
    await boot(a, guest);
    const stats = await a.getAllDomainStats({ groups: ['state', 'cpuTotal'] });
    expect(stats.find((r) => r.domain.uuid === guest.uuid)?.stats).toMatchObject({
      'state.state': 1,
      'cpu.time': expect.any(Number),
    });
    // No guest-agent channel in this guest: libvirt says so.
    await expect(a.domainAgentCommand(guest.uuid, '{"execute":"guest-ping"}')).rejects.toMatchObject({
      codeName: 'VIR_ERR_ARGUMENT_UNSUPPORTED',
    });

    // Throttled to 1 MiB/s, the migration runs for a long time: the
    // connection's worker stays free for job stats and abort.
    const options = { destinationUri: destination.uri, peerToPeer: true, live: true };
    const slow = a.domainMigrate(guest.uuid, { ...options, bandwidthMiBps: 1 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const deadline = Date.now() + 20_000;
    let job = await a.domainGetJobStats(guest.uuid);
    while (job.type !== 'unbounded' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      job = await a.domainGetJobStats(guest.uuid);
    }
    expect(job).toMatchObject({
      type: 'unbounded',
      operation: 'migration_out',
      stats: { memory_total: expect.any(Number) },
    });
    await a.domainAbortJob(guest.uuid);
    expect(await slow).toMatchObject({ codeName: 'VIR_ERR_OPERATION_ABORTED' });
    expect(await a.domainGetState(guest.uuid)).toMatchObject({ state: 'running' });

    const before = await uptime(guest, source);
    const arrived = lifecycleEvent(b, guest.uuid, 'resumed', 60_000);
    await a.domainMigrate(guest.uuid, {
      ...options,
      persistDestination: true,
      undefineSource: true,
      maxDowntimeMs: 300,
    });
    expect((await arrived).detail).toBe('migrated');
    expect(await b.domainGetState(guest.uuid)).toMatchObject({ state: 'running', reason: 'migrated' });
    expect((await a.listAllDomains()).map((d) => d.uuid)).not.toContain(guest.uuid);
    const done = await b.domainGetJobStats(guest.uuid, { completed: true });
    expect(done).toMatchObject({ type: 'completed', operation: 'migration_in' });
    // The same guest, still running: its clock went on.
    expect(await uptime(guest, destination)).toBeGreaterThan(before);
    await b.domainDestroy(guest.uuid);
    await b.domainUndefine(guest.uuid);
  }, 120_000);
});

/** The guest's uptime in seconds, asked through its command server on `host`. */
async function uptime(guest: Guest, host: RigHost): Promise<number> {
  const shell = await GuestShell.connect(guest.commandSocket(host));
  try {
    const { output, rc } = await shell.run('cat /proc/uptime');
    expect(rc).toBe(0);
    return Number(output.split(' ')[0]);
  } finally {
    shell.close();
  }
}

/** The pids holding a POSIX lock on `file`, from /proc/locks. */
function lockHolders(file: string): number[] {
  if (!existsSync(file)) return [];
  const { ino } = statSync(file);
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1] === 'POSIX' && f[5]?.split(':')[2] === String(ino))
    .map((f) => Number(f[4]));
}
