// Live migration with and without storage copy, on two rig hosts (test/rig), for the tiny guest
// with 256 MiB of memory and a 1 GiB disk filled with data: prints, per case, the total time of
// the migrate call, the downtime libvirt's completed job statistics give (downtime, the pause at
// the switch-over), and the guest-visible pause: the guest prints a tick on its console every
// 10 ms (its serial port writes to a file both hosts share), this process stamps each tick as
// it arrives, and the largest gap between two ticks, less the usual interval, is the time the
// guest did not run.
//
//   without copy  shared storage: the 1 GiB raw disk served by one qemu-nbd (on a UNIX socket in
//                 the hosts' shared directory) to both hosts' QEMUs, as a network disk. (libvirt
//                 9.0 calls a writable disk on a local file system unsafe to migrate without a
//                 copy, and this machine has no NFS; a network disk is what it takes as shared.)
//   shared file   the 1 GiB raw disk as a file in the hosts' shared directory, as a HostPool with
//                 spec.storage.shared and assumeCoherent has it: migrated with unsafe (libvirt's
//                 VIR_MIGRATE_UNSAFE), as the controller does for such a pool.
//   with copy     a 1 GiB qcow2 disk at a path private to each host (as a host-local pool), the
//                 destination's file made first (as the controller does), copyStorage 'all'.
//
//   tsx bench/migration/storage-copy.ts [rounds=1]        # needs root (the rig)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { el, serialize } from '../../test/harness/xml.js';
import { GuestShell, guestImage, READY_MARKER, waitForFileMatch } from '../../test/rig/guest.js';
import { GUEST_PRIVATE_DIR, Rig } from '../../test/rig/rig.js';

const ROUNDS = Number(process.argv[2] ?? 1);
const MEMORY_MIB = 256;
const DISK_BYTES = 1 << 30;
const TICK_MS = 10;

interface Result {
  kind: string;
  totalMs: number;
  downtimeMs: number | undefined;
  diskBytes: number | undefined;
  guestPauseMs: number;
}

function domainXml(uuid: string, name: string, image: { kernel: string; initrd: string }, disk: Disk, log: string) {
  const socket = `${GUEST_PRIVATE_DIR}/${name}.cmd.sock`;
  return serialize(
    el(
      'domain',
      { type: 'qemu' },
      el('name', {}, name),
      el('uuid', {}, uuid),
      el('memory', { unit: 'MiB' }, MEMORY_MIB),
      el('vcpu', {}, 1),
      el(
        'os',
        {},
        el('type', { arch: 'x86_64', machine: 'pc' }, 'hvm'),
        el('kernel', {}, image.kernel),
        el('initrd', {}, image.initrd),
        el('cmdline', {}, 'console=ttyS0 quiet panic=-1'),
      ),
      el(
        'devices',
        {},
        el('emulator', {}, '/usr/bin/qemu-system-x86_64'),
        el('serial', { type: 'file' }, el('source', { path: log, append: 'on' }), el('target', { port: 0 })),
        el('serial', { type: 'unix' }, el('source', { mode: 'bind', path: socket }), el('target', { port: 1 })),
        el(
          'disk',
          { type: disk.nbd ? 'network' : 'file', device: 'disk' },
          el('driver', { name: 'qemu', type: disk.format, cache: 'none' }),
          disk.nbd
            ? el('source', { protocol: 'nbd' }, el('host', { transport: 'unix', socket: disk.path }))
            : el('source', { file: disk.path }),
          el('target', { dev: 'vda', bus: 'virtio' }),
        ),
        el('controller', { type: 'usb', model: 'none' }),
        el('memballoon', { model: 'none' }),
      ),
    ),
  );
}

/** The disk: served by qemu-nbd, a file in the shared directory (unsafe), or copied. */
type Kind = 'nbd' | 'file' | 'copy';

interface Disk {
  format: 'raw' | 'qcow2';
  /** A file on the host, or the UNIX socket of an NBD server. */
  path: string;
  nbd: boolean;
}

/** A disk of DISK_BYTES, every byte written (a pattern), so a copy has all of it to move. */
function makeDisk(path: string, format: 'raw' | 'qcow2'): void {
  execFileSync('qemu-img', ['create', '-q', '-f', format, path, String(DISK_BYTES)]);
  execFileSync('qemu-io', ['-f', format, '-c', `write -q -P 0xab 0 ${DISK_BYTES}`, path]);
}

/** Ticks as this process sees them arrive in the serial log (polled every ms). */
class TickWatch {
  readonly arrivals: number[] = [];
  private offset = 0;
  private rest = '';
  private readonly timer: NodeJS.Timeout;
  private readonly fd: number;
  constructor(file: string) {
    this.fd = openSync(file, 'r');
    const buffer = Buffer.alloc(1 << 16);
    this.timer = setInterval(() => {
      for (;;) {
        const read = readSync(this.fd, buffer, 0, buffer.length, this.offset);
        if (read <= 0) return;
        this.offset += read;
        const now = performance.now();
        const text = this.rest + buffer.subarray(0, read).toString('latin1');
        const lines = text.split('\n');
        this.rest = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('VF-TICK')) this.arrivals.push(now);
      }
    }, 1);
  }
  /** The largest gap between two ticks that arrived in [from, to], less the median gap. */
  pauseMs(from: number, to: number): number {
    const inside = this.arrivals.filter((t) => t >= from && t <= to);
    const gaps = inside.slice(1).map((t, i) => t - inside[i]!);
    if (gaps.length === 0) return NaN;
    const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    return Math.max(...gaps) - median;
  }
  stop(): void {
    clearInterval(this.timer);
    closeSync(this.fd);
  }
}

async function migrateOnce(
  rig: Rig,
  pool: LibvirtConnectionPool,
  image: { kernel: string; initrd: string },
  kind: Kind,
): Promise<Result> {
  const copy = kind === 'copy';
  const [hostA, hostB] = [rig.hosts[0]!, rig.hosts[1]!];
  const a = new LibvirtHypervisor(pool, hostA.uri);
  const b = new LibvirtHypervisor(pool, hostB.uri);
  const name = `bench-${kind}-${randomUUID().slice(0, 6)}`;
  const uuid = randomUUID();
  const inHost = `${GUEST_PRIVATE_DIR}/${name}.qcow2`;
  const file = copy ? hostA.privatePath(inHost) : join(rig.sharedDir, `${name}.raw`);
  const files = copy ? [file, hostB.privatePath(inHost)] : [file];
  makeDisk(file, copy ? 'qcow2' : 'raw');
  let nbd: ChildProcess | undefined;
  let disk: Disk;
  if (copy) {
    // The destination's file first, as the controller makes the volume (same size and format).
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', files[1]!, String(DISK_BYTES)]);
    disk = { format: 'qcow2', path: inHost, nbd: false };
  } else if (kind === 'file') {
    disk = { format: 'raw', path: file, nbd: false };
  } else {
    const socket = join(rig.sharedDir, `${name}.nbd.sock`);
    // Two clients at the switch-over (source and destination QEMU); persistent across them.
    nbd = spawn('qemu-nbd', ['-f', 'raw', '-k', socket, '--shared=4', '--persistent', '--cache=none', file], {
      stdio: 'ignore',
    });
    for (const deadline = Date.now() + 10_000; !existsSync(socket);) {
      if (Date.now() > deadline) throw new Error('qemu-nbd did not make its socket');
      await new Promise((r) => setTimeout(r, 50));
    }
    files.push(socket);
    disk = { format: 'raw', path: socket, nbd: true };
  }
  const log = join(rig.sharedDir, `${name}.serial.log`);
  execFileSync('touch', [log]);
  const watch = new TickWatch(log);
  try {
    await a.ensureDefined(domainXml(uuid, name, image, disk, log));
    await a.start(uuid);
    await waitForFileMatch(log, READY_MARKER, 180_000);
    const shell = await connectShell(hostA.privatePath(`${GUEST_PRIVATE_DIR}/${name}.cmd.sock`));
    try {
      // The guest's timer: a tick on the console every TICK_MS.
      await shell.run(`(while :; do echo VF-TICK; usleep ${TICK_MS * 1000}; done) > /dev/ttyS0 2>&1 &`, 60_000);
    } finally {
      shell.close();
    }
    while (watch.arrivals.length < 50) await new Promise((r) => setTimeout(r, 50));
    const start = performance.now();
    // The disks' share, as the controller reads it while the job runs (completed statistics lack it).
    let diskBytes: number | undefined;
    let migrating = true;
    const sampling = (async () => {
      while (migrating) {
        const progress = await a.migrationProgress(uuid).catch(() => undefined);
        if (progress?.diskTotal) diskBytes = Math.max(diskBytes ?? 0, progress.diskTotal);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const options = { nbd: {}, file: { unsafe: true }, copy: { copyStorage: 'all' as const } }[kind];
    await a.migrate(uuid, { uri: hostB.uri }, options).finally(() => {
      migrating = false;
    });
    const end = performance.now();
    await sampling;
    await new Promise((r) => setTimeout(r, 1000)); // ticks after the switch-over
    const stats = await completedStats(hostB.uri, uuid);
    await b.destroy(uuid).catch(() => undefined);
    await b.undefine(uuid).catch(() => undefined);
    return {
      kind: { nbd: 'without copy', file: 'shared file', copy: 'with storage copy' }[kind],
      totalMs: end - start,
      downtimeMs: stats.downtime,
      diskBytes,
      guestPauseMs: watch.pauseMs(start, end + 1000),
    };
  } finally {
    watch.stop();
    nbd?.kill();
    for (const path of files) rmSync(path, { force: true });
  }
}

async function connectShell(socket: string): Promise<GuestShell> {
  for (const deadline = Date.now() + 60_000; ;) {
    try {
      const shell = await GuestShell.connect(socket);
      await shell.run('true', 60_000);
      return shell;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The migration's completed job statistics, as the destination keeps them (libvirt hands them over). */
async function completedStats(uri: string, uuid: string): Promise<Record<string, number | undefined>> {
  const conn = await LibvirtConnection.open(uri);
  try {
    const job = await conn.domainGetJobStats(uuid, { completed: true });
    const number = (key: string) => (typeof job.stats[key] === 'number' ? (job.stats[key] as number) : undefined);
    return { downtime: number('downtime'), time_elapsed: number('time_elapsed') };
  } finally {
    await conn.close();
  }
}

const rig = await Rig.start({ hosts: 2 });
const pool = new LibvirtConnectionPool();
const results: Result[] = [];
const loadBefore = loadavg();
try {
  const image = await guestImage();
  for (let round = 0; round < ROUNDS; round++)
    for (const kind of ['nbd', 'file', 'copy'] as const) results.push(await migrateOnce(rig, pool, image, kind));
} finally {
  await pool.closeAll();
  await rig.teardown();
}
const loadAfter = loadavg();
const ms = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? '—' : `${Math.round(value)} ms`;
console.log(
  `live migration, ${MEMORY_MIB} MiB guest (TCG), 1 GiB disk written full; guest tick every ${TICK_MS} ms; ${ROUNDS} round(s)`,
);
console.log('case               | total    | downtime (job stats) | guest-visible pause | disk copied');
for (const r of results)
  console.log(
    `${r.kind.padEnd(18)} | ${ms(r.totalMs).padEnd(8)} | ${ms(r.downtimeMs).padEnd(20)} | ${ms(r.guestPauseMs).padEnd(19)} | ${r.diskBytes ? `${(r.diskBytes / 2 ** 20).toFixed(0)} MiB` : '—'}`,
  );
console.log(
  `load average (1 min) before ${loadBefore[0]!.toFixed(2)}, after ${loadAfter[0]!.toFixed(2)}; ${execFileSync('nproc').toString().trim()} CPUs`,
);
