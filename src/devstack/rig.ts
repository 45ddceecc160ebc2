// Real libvirtd hosts on this machine, for the e2e tests (test/rig re-exports this module) and
// for `make run` (real-hosts.ts). Each simulated host is a `libvirtd` (plus its
// `virtlockd`) in a network namespace and a mount namespace of its own, with
// private /run/libvirt, /var/lib/libvirt, /etc/libvirt, /var/log/libvirt and
// /var/cache/libvirt, joined to the test's namespace by a veth pair and
// listening for qemu+tcp:// on its veth address only. Guests are QEMU/TCG
// (this machine has no usable KVM). All hosts of one rig share a disk
// directory and a virtlockd lockspace, as real hosts share storage.
//
// Cutting a host's link (veth down, or an iptables DROP inside its namespace)
// is a real network partition for the controller while its guests keep
// running; freeze() SIGSTOPs its libvirtd.
//
// Needs root (namespaces, veths, libvirtd), Debian's libvirt-daemon,
// libvirt-daemon-driver-qemu, qemu-system-x86, iptables, busybox-static and
// cpio (hack/setup.sh installs them). Addresses come from 10.250.0.0/16, one
// /30 per host, reserved under /run/virtfleet-rig so that rigs of concurrent
// test runs never collide; a reservation whose owner died is reclaimed.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export { repoRoot } from './binaries.js';

const run = promisify(execFile);

const SLOT_DIR = '/run/virtfleet-rig';
/** Every rig address comes from this range (one /30 per host). */
export const RIG_RANGE = '10.250.0.0/16';
/**
 * The root namespace's catch-all for RIG_RANGE: a downed veth removes its /30, and without this
 * the packets for that host would follow the default route off the machine. The /30s are longer
 * prefixes and win while they exist; the highest metric keeps this below any other route for the
 * same range. Never removed: concurrent rigs (and later ones) share it, and a machine where the
 * rig's private range fails locally is what every test wants.
 */
const RIG_UNREACHABLE_ROUTE = ['unreachable', RIG_RANGE, 'metric', '4294967295'];
const LIBVIRT_PORT = 16509;
/** A directory private to each host (its /var/lib/libvirt/rig), same path on all. */
export const GUEST_PRIVATE_DIR = '/var/lib/libvirt/rig';

const STATE_DIRS = {
  run: '/run/libvirt',
  lib: '/var/lib/libvirt',
  etc: '/etc/libvirt',
  log: '/var/log/libvirt',
  cache: '/var/cache/libvirt',
} as const;

export interface RigOptions {
  /** How many simulated hosts. */
  hosts: number;
  /** Run a virtlockd per host with a lockspace shared by all (default true). */
  diskLeases?: boolean;
  /**
   * Hide /dev/kvm from the hosts (a read-only empty file bound over it in each host's mount
   * namespace), so that libvirt offers no 'kvm' domain type and a controller defines TCG
   * domains (type 'qemu'). Default true: these machines have a /dev/kvm without vmx/svm
   * (shared/FACTS.md); guests under it print nothing on their console or stop in real-mode
   * option ROMs such as iPXE's ("KVM internal error. Suberror: 1, emulation failure").
   */
  hideKvm?: boolean;
  /** How long a host may take to listen (default 30 s). */
  startTimeoutMs?: number;
  /**
   * The host's reaper, a command prefix that runs the rest (default `tini -s -g --`): the
   * subreaper of the QEMUs libvirt daemonizes. bench/libvirt/crash-latency.ts compares tini
   * with a reaper that lets the kernel reap (bench/libvirt/autoreap.c).
   */
  reaper?: string[];
  /** Where the hosts' directories and the shared storage go (default: a new directory under the system's tmpdir). */
  baseDir?: string;
}

/** Names derived from a reserved slot number (1..250). */
function slotNames(slot: number) {
  return {
    netns: `vfrig${slot}`,
    outer: `vfr${slot}o`,
    inner: `vfr${slot}i`,
    outerAddress: `10.250.${slot}.1`,
    address: `10.250.${slot}.2`,
    file: join(SLOT_DIR, `slot-${slot}`),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function quiet(fn: () => void): void {
  try {
    fn();
  } catch {
    // best effort: the thing is already gone
  }
}

/** Every process whose network namespace is `netns` (libvirtd, virtlockd, QEMU). */
function netnsPids(netns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Installs RIG_UNREACHABLE_ROUTE (idempotent). */
export async function ensureRigUnreachableRoute(): Promise<void> {
  await run('ip', ['route', 'replace', ...RIG_UNREACHABLE_ROUTE]);
}

/** Whether the root namespace has the catch-all for RIG_RANGE. */
export async function hasRigUnreachableRoute(): Promise<boolean> {
  const { stdout } = await run('ip', ['route', 'show', 'type', 'unreachable', 'exact', RIG_RANGE]);
  return stdout.startsWith(`unreachable ${RIG_RANGE}`);
}

/** Kills a slot's processes and removes its namespace and veth (synchronous: usable from an exit hook). */
function destroySlot(slot: number): void {
  const names = slotNames(slot);
  for (const pid of netnsPids(names.netns)) quiet(() => process.kill(pid, 'SIGKILL'));
  quiet(() => execFileSync('ip', ['netns', 'del', names.netns], { stdio: 'ignore' }));
  quiet(() => execFileSync('ip', ['link', 'del', names.outer], { stdio: 'ignore' }));
}

function reserveSlot(): number {
  mkdirSync(SLOT_DIR, { recursive: true });
  for (let slot = 1; slot <= 250; slot++) {
    const { file } = slotNames(slot);
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return slot;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) continue;
    // A rig whose process died without teardown: reclaim its slot. Two
    // reclaimers race on the unlink; the loser retries the next slot.
    destroySlot(slot);
    quiet(() => unlinkSync(file));
    slot--;
  }
  throw new Error(`no free rig slot under ${SLOT_DIR}: 250 hosts reserved by live processes`);
}

function releaseSlot(slot: number): void {
  quiet(() => unlinkSync(slotNames(slot).file));
}

async function ensurePrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the libvirt rig needs root (network namespaces, veths, libvirtd)');
  for (const tool of ['/usr/sbin/libvirtd', '/usr/sbin/virtlockd', '/usr/bin/qemu-system-x86_64', '/usr/bin/tini']) {
    if (!existsSync(tool)) {
      throw new Error(
        `${tool} is missing: install libvirt-daemon, libvirt-daemon-driver-qemu, qemu-system-x86 and tini (hack/setup.sh)`,
      );
    }
  }
  // libvirtd's QEMU driver refuses to start without user libvirt-qemu and
  // groups libvirt-qemu and kvm, whatever qemu.conf says ("Failed to parse user 'libvirt-qemu'"); libvirt-daemon-system would
  // make them, but it needs systemd.
  for (const group of ['kvm', 'libvirt-qemu']) {
    try {
      await run('getent', ['group', group]);
    } catch {
      await run('groupadd', ['--system', group]);
    }
  }
  try {
    await run('getent', ['passwd', 'libvirt-qemu']);
  } catch {
    await run('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      '--gid',
      'libvirt-qemu',
      '--groups',
      'kvm',
      'libvirt-qemu',
    ]);
  }
  // Mount points for the private state directories.
  for (const dir of Object.values(STATE_DIRS)) mkdirSync(dir, { recursive: true });
}

/** libvirt's conf syntax for a string value; only rig-made values reach it. */
function confString(value: string): string {
  if (/["\\\n]/.test(value)) throw new Error(`unexpected character in rig config value ${JSON.stringify(value)}`);
  return `"${value}"`;
}

// Probing QEMU's capabilities takes libvirtd ~4.5 s under TCG, and each
// host's /var/cache/libvirt is private: seed it from the last probe. libvirt
// itself checks a cached entry (QEMU binary, libvirt version, kernel, CPU
// microcode) and probes again when it is stale.
// Hosts without KVM (RigOptions.hideKvm) probe to other capabilities: a cache of their own.
function capabilitiesCache(hideKvm = false): string {
  return join(
    process.env.VIRTFLEET_CACHE ?? join(homedir(), '.cache', 'virtfleet'),
    'rig',
    hideKvm ? 'qemu-capabilities-no-kvm' : 'qemu-capabilities',
  );
}

function seedQemuCapabilities(hostDir: string, hideKvm: boolean): void {
  const from = capabilitiesCache(hideKvm);
  if (!existsSync(from)) return;
  const to = join(hostDir, 'cache', 'qemu', 'capabilities');
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) if (file.endsWith('.xml')) copyFileSync(join(from, file), join(to, file));
}

function keepQemuCapabilities(hostDir: string, hideKvm: boolean): void {
  const from = join(hostDir, 'cache', 'qemu', 'capabilities');
  if (!existsSync(from)) return;
  const to = capabilitiesCache(hideKvm);
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) {
    if (!file.endsWith('.xml')) continue;
    // Write then rename: a concurrent rig never reads half a file.
    const tmp = join(to, `.${file}.${process.pid}`);
    copyFileSync(join(from, file), tmp);
    renameSync(tmp, join(to, file));
  }
}

export class RigHost {
  /** The libvirtd's pid (from its pidfile), for freeze/thaw. */
  libvirtdPid = 0;
  private daemon: ChildProcess | undefined;
  private daemonExit: Promise<number | null> | undefined;

  constructor(
    readonly index: number,
    readonly slot: number,
    readonly dir: string,
    private readonly rig: Rig,
  ) {}

  get name(): string {
    return `host${this.index}`;
  }
  get netns(): string {
    return slotNames(this.slot).netns;
  }
  get address(): string {
    return slotNames(this.slot).address;
  }
  get uri(): string {
    return `qemu+tcp://${this.address}/system`;
  }
  /** The host's end of its veth pair, in its namespace: the interface its address is on. */
  get interface(): string {
    return slotNames(this.slot).inner;
  }
  /** Where this host's /run/libvirt really is (QEMU pidfiles are under qemu/). */
  get runDir(): string {
    return join(this.dir, 'run');
  }
  get logDir(): string {
    return join(this.dir, 'log');
  }

  /**
   * Where a path under the host's private /var/lib/libvirt is seen from the
   * test. Guests' command sockets live there (GUEST_PRIVATE_DIR): one XML,
   * a socket per host, so a migrated guest is reached on the host it is on.
   */
  privatePath(pathInHost: string): string {
    const prefix = `${STATE_DIRS.lib}/`;
    if (!pathInHost.startsWith(prefix)) throw new Error(`${pathInHost} is not under ${prefix}`);
    return join(this.dir, 'lib', pathInHost.slice(prefix.length));
  }

  /** @internal */
  async start(timeoutMs: number): Promise<void> {
    const names = slotNames(this.slot);
    for (const sub of Object.keys(STATE_DIRS)) mkdirSync(join(this.dir, sub), { recursive: true });
    mkdirSync(join(this.dir, 'lib', 'rig'), { recursive: true });
    // As Debian's libvirt-daemon-system makes it: libvirt creates a domain's own log there lazily,
    // but a character device's <log file> (an installer's serial log) is created before that.
    mkdirSync(join(this.dir, 'log', 'qemu'), { recursive: true });
    this.writeConfig();
    seedQemuCapabilities(this.dir, this.rig.hideKvm);

    // The veth pair: outer end here, inner end in the host's namespace.
    await run('ip', ['netns', 'add', names.netns]);
    await run('ip', ['link', 'add', names.outer, 'type', 'veth', 'peer', 'name', names.inner, 'netns', names.netns]);
    await run('ip', ['addr', 'add', `${names.outerAddress}/30`, 'dev', names.outer]);
    await run('ip', ['link', 'set', names.outer, 'up']);
    await run('ip', ['-n', names.netns, 'addr', 'add', `${names.address}/30`, 'dev', names.inner]);
    await run('ip', ['-n', names.netns, 'link', 'set', names.inner, 'up']);
    await run('ip', ['-n', names.netns, 'link', 'set', 'lo', 'up']);
    // Hosts reach each other (migration) through the test's namespace:
    // forwarding on the outer veth only (not the machine-wide switch), and a
    // route for the rig's range only; nothing else is reachable.
    writeFileSync(`/proc/sys/net/ipv4/conf/${names.outer}/forwarding`, '1\n');
    await run('ip', ['-n', names.netns, 'route', 'add', RIG_RANGE, 'via', names.outerAddress]);

    // The mount namespace: private state directories bind-mounted over the
    // standard ones; then virtlockd (daemonized) and libvirtd (in the
    // foreground). Paths come in as positional parameters, never pasted into
    // the script.
    //
    // tini -s is the host's reaper. libvirt daemonizes QEMU, so a QEMU that
    // dies is reaped by its new parent, and libvirt reports it stopped only
    // once it is reaped (qemuProcessKill polls the pid every 200 ms). Left
    // to this machine's PID 1, which reaps orphans only every 1-1.7 s, a
    // crash took 1.2-2 s to reach JavaScript; a subreaper reaps at once, as
    // systemd does on a real host.
    const script = [
      'set -e',
      'mount --bind "$1/run" /run/libvirt',
      'mount --bind "$1/lib" /var/lib/libvirt',
      'mount --bind "$1/etc" /etc/libvirt',
      'mount --bind "$1/log" /var/log/libvirt',
      'mount --bind "$1/cache" /var/cache/libvirt',
      'if [ "$3" = 1 ] && [ -e /dev/kvm ]; then : > "$1/no-kvm"; mount --bind "$1/no-kvm" /dev/kvm; mount -o remount,bind,ro /dev/kvm; fi',
      'if [ "$2" = 1 ]; then virtlockd -d -p /run/libvirt/virtlockd.pid; fi',
      'exec libvirtd --listen -p /run/libvirt/libvirtd.pid',
    ].join('\n');
    const out = openSync(join(this.dir, 'libvirtd.out'), 'a');
    const child = spawn(
      'ip',
      // prettier-ignore
      ['netns', 'exec', names.netns, 'unshare', '--mount', '--propagation', 'private',
        ...this.rig.reaper, 'sh', '-c', script, 'rig-host', this.dir, this.rig.diskLeases ? '1' : '0', this.rig.hideKvm ? '1' : '0'],
      { stdio: ['ignore', out, out], detached: true },
    );
    closeSync(out);
    child.unref();
    this.daemon = child;
    this.daemonExit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));

    await this.waitListening(timeoutMs);
    this.libvirtdPid = Number(readFileSync(join(this.runDir, 'libvirtd.pid'), 'utf8').trim());
    keepQemuCapabilities(this.dir, this.rig.hideKvm);
  }

  private writeConfig(): void {
    const etc = join(this.dir, 'etc');
    const address = confString(this.address);
    writeFileSync(
      join(etc, 'libvirtd.conf'),
      [
        'listen_tls = 0',
        'listen_tcp = 1',
        `listen_addr = ${address}`,
        'auth_tcp = "none"',
        `host_uuid = ${confString(randomUUID())}`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(etc, 'qemu.conf'),
      [
        'user = "root"',
        'group = "root"',
        'dynamic_ownership = 0',
        'remember_owner = 0',
        'security_driver = "none"',
        // QEMU's stderr goes to /var/log/libvirt/qemu/NAME.log without virtlogd.
        'stdio_handler = "file"',
        'cgroup_controllers = [ ]',
        // All hosts share one hostname: name the migration address outright.
        `migration_address = ${address}`,
        `migration_host = ${address}`,
        this.rig.diskLeases ? 'lock_manager = "lockd"' : '',
        // Without KVM (hideKvm) the host's /dev/kvm is a file bound over the device, which
        // libvirt's private /dev per domain cannot copy ("Unable to move … mount to /dev/kvm").
        this.rig.hideKvm ? 'namespaces = [ ]' : '',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(etc, 'qemu-lockd.conf'),
      [
        'auto_disk_leases = 1',
        'require_lease_for_disks = 1',
        `file_lockspace_dir = ${confString(this.rig.lockspaceDir)}`,
        '',
      ].join('\n'),
    );
  }

  private async waitListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: number | null | undefined;
    void this.daemonExit?.then((code) => {
      exited = code;
    });
    for (;;) {
      if (exited !== undefined) {
        throw new Error(`${this.name}: libvirtd exited with ${exited} before listening; see ${this.daemonLog()}`);
      }
      // The daemon listens before its drivers are up (and may still fail
      // then): ready means a libvirt call over TCP answers.
      const ok = await run('virsh', ['-c', this.uri, '-q', 'version'], { timeout: 5_000 }).then(
        () => true,
        () => false,
      );
      if (ok && existsSync(join(this.runDir, 'libvirtd.pid'))) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${this.name}: libvirtd not listening on ${this.address}:${LIBVIRT_PORT} after ${timeoutMs} ms; see ${this.daemonLog()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The tail of libvirtd's own output, for error messages. */
  daemonLog(): string {
    const file = join(this.dir, 'libvirtd.out');
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    return `${file}:\n${text.split('\n').slice(-20).join('\n')}`;
  }

  /** QEMU's pid for a running domain on this host (libvirt's pidfile). */
  qemuPid(domainName: string): number {
    const pid = Number(readFileSync(join(this.runDir, 'qemu', `${domainName}.pid`), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${this.name}: no QEMU pid for ${domainName}`);
    return pid;
  }

  /** Every process in the host's network namespace. */
  pids(): number[] {
    return netnsPids(this.netns);
  }

  /** SIGSTOP the libvirtd: it stops answering, its TCP connections stay open. */
  freeze(): void {
    process.kill(this.libvirtdPid, 'SIGSTOP');
  }

  thaw(): void {
    process.kill(this.libvirtdPid, 'SIGCONT');
  }

  /**
   * Partitions the host from the test's namespace: 'link' takes the outer
   * veth down; 'iptables' drops every packet inside the host's namespace.
   * Guests and daemons keep running either way.
   */
  async cutLink(method: 'link' | 'iptables' = 'link'): Promise<void> {
    const names = slotNames(this.slot);
    if (method === 'link') {
      // Without the catch-all, this host's packets would leave the machine by the default route.
      if (!(await hasRigUnreachableRoute()))
        throw new Error(`refusing to take ${names.outer} down: the unreachable route for ${RIG_RANGE} is missing`);
      await run('ip', ['link', 'set', names.outer, 'down']);
    } else {
      await this.iptables('-I');
    }
  }

  async restoreLink(method: 'link' | 'iptables' = 'link'): Promise<void> {
    const names = slotNames(this.slot);
    if (method === 'link') {
      await run('ip', ['link', 'set', names.outer, 'up']);
    } else {
      await this.iptables('-D');
    }
  }

  /**
   * A partition that takes effect within a millisecond of cut(): an `ip -batch` process already
   * running in the host's namespace takes its veth's inner end down (and up on heal()). For
   * cutting at a precise moment (a migration's switchover) where spawning iptables is too slow.
   * Packets to the host then die at the veth without carrier; nothing leaves the machine.
   */
  fastCutter(): FastCut {
    const names = slotNames(this.slot);
    return new FastCut(names.netns, names.inner, names.outerAddress);
  }

  /**
   * Slows what the host sends (a token bucket on its inner veth): a migration out of it then
   * takes seconds instead of one, long enough to act in its middle. unshape() lifts it.
   */
  async shape(rateMbit: number): Promise<void> {
    const names = slotNames(this.slot);
    await run('ip', [
      'netns',
      'exec',
      names.netns,
      'tc',
      'qdisc',
      'replace',
      'dev',
      names.inner,
      'root',
      'tbf',
      'rate',
      `${rateMbit}mbit`,
      'burst',
      '32kbit',
      'latency',
      '400ms',
    ]);
  }

  async unshape(): Promise<void> {
    const names = slotNames(this.slot);
    await run('ip', ['netns', 'exec', names.netns, 'tc', 'qdisc', 'del', 'dev', names.inner, 'root']).catch(
      () => undefined,
    );
  }

  private async iptables(op: '-I' | '-D'): Promise<void> {
    const names = slotNames(this.slot);
    const exec = ['netns', 'exec', names.netns, 'iptables', '-w'];
    await run('ip', [...exec, op, 'INPUT', '-i', names.inner, '-j', 'DROP']);
    await run('ip', [...exec, op, 'OUTPUT', '-o', names.inner, '-j', 'DROP']);
  }

  /** @internal Kills every process of the host and removes its namespace and veth. */
  async destroy(): Promise<void> {
    const pids = this.pids();
    destroySlot(this.slot);
    const deadline = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    releaseSlot(this.slot);
  }
}

export class FastCut {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(
    netns: string,
    private readonly inner: string,
    private readonly outerAddress: string,
  ) {
    this.child = spawn('ip', ['-n', netns, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  cut(): void {
    this.child.stdin!.write(`link set ${this.inner} down\n`);
  }

  /** Link up, and the route to the rest of the rig back (a downed link loses its routes). */
  heal(): void {
    this.child.stdin!.write(`link set ${this.inner} up\nroute replace ${RIG_RANGE} via ${this.outerAddress}\n`);
  }

  /** Heals and ends the helper process. */
  async close(): Promise<void> {
    this.heal();
    this.child.stdin!.end();
    await this.exited;
  }
}

const liveRigs = new Set<Rig>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test run dies without teardown: synchronous cleanup.
  process.on('exit', () => {
    for (const rig of liveRigs) rig.destroySync();
  });
}

export class Rig {
  readonly hosts: RigHost[] = [];
  /** Seen by every host at the same path: shared storage. */
  readonly sharedDir: string;
  readonly lockspaceDir: string;
  private torndown = false;

  private constructor(
    readonly baseDir: string,
    readonly diskLeases: boolean,
    readonly hideKvm = true,
    readonly reaper: readonly string[] = ['tini', '-s', '-g', '--'],
  ) {
    this.sharedDir = join(baseDir, 'shared');
    this.lockspaceDir = join(this.sharedDir, 'lockspace');
    mkdirSync(this.lockspaceDir, { recursive: true });
    mkdirSync(join(this.sharedDir, 'guests'), { recursive: true });
  }

  /** Starts `options.hosts` libvirtd hosts; on any failure tears down what started and rejects. */
  static async start(options: RigOptions): Promise<Rig> {
    await ensurePrerequisites();
    await ensureRigUnreachableRoute();
    const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'vfrig-'));
    mkdirSync(baseDir, { recursive: true });
    const rig = new Rig(baseDir, options.diskLeases ?? true, options.hideKvm ?? true, options.reaper);
    liveRigs.add(rig);
    installExitHook();
    try {
      for (let i = 0; i < options.hosts; i++) {
        const slot = reserveSlot();
        const host = new RigHost(i, slot, join(rig.baseDir, `host${i}`), rig);
        rig.hosts.push(host);
      }
      await Promise.all(rig.hosts.map((host) => host.start(options.startTimeoutMs ?? 30_000)));
    } catch (error) {
      await rig.teardown({ keepFiles: true });
      throw error;
    }
    return rig;
  }

  /** Kills every host's processes (guests included) and removes namespaces, veths and files. */
  async teardown(options: { keepFiles?: boolean } = {}): Promise<void> {
    if (this.torndown) return;
    this.torndown = true;
    await Promise.all(this.hosts.map((host) => host.destroy()));
    liveRigs.delete(this);
    if (!options.keepFiles && !process.env.VIRTFLEET_RIG_KEEP) rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** @internal Exit-hook path. */
  destroySync(): void {
    for (const host of this.hosts) {
      destroySlot(host.slot);
      releaseSlot(host.slot);
    }
  }
}
