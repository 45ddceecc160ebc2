// kill -9 of QEMU -> lifecycle `stopped` event on a real libvirtd of the rig
// (needs root), two ways side by side, under two host reapers:
//
//   npx tsx bench/libvirt/crash-latency.ts [--kills N]
//
// - the plain C client (crash-latency.c): the floor for any libvirt client,
//   with each kill's moments of exit and reap;
// - the binding: the JavaScript listener of a LibvirtConnection.
//
// Reapers: `tini -s` (the rig's default: it reaps with wait() when it is
// scheduled) and autoreap.c (SIGCHLD ignored: the kernel reaps in the dying
// process's own exit path). libvirtd's debug log (turned on through
// virt-admin for the QEMU driver and util.process) shows per kill when it
// read EOF on the monitor, when it looked for the process
// (virProcessKillPainfullyDelay) and when its stop went on: a look that
// found QEMU still there sleeps 200 ms. "Without that sleep" is each
// kill's event time less it: what libvirt itself could deliver. Also run
// by cycles.ts (its rig part).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));

export interface ReaperFigures {
  reaper: string;
  /** The C client's summary lines. */
  c: string;
  /** The C client's kill -> event, ms, in kill order. */
  cEvents: number[];
  /** The binding's kill -> JavaScript event, ms, in kill order. */
  binding: number[];
  /** libvirtd's log, per kill (C client's first, then the binding's): EOF -> look, look -> stop goes on, ms. */
  stops: Array<{ eofToLook: number; lookToStop: number }>;
}

const LOG_FILTERS = '1:qemu.qemu_process 1:qemu.qemu_driver 1:qemu.qemu_monitor 1:util.process 4:rpc 4:event 4:object';

function logTime(line: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})\+0000/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}Z`) : NaN;
}

/** Per monitor EOF in libvirtd's log: how long until it looked for QEMU, and until its stop went on. */
export function stopsInLog(log: string): Array<{ eofToLook: number; lookToStop: number }> {
  const out: Array<{ eofToLook: number; lookToStop: number }> = [];
  let eof = NaN;
  let look = NaN;
  for (const line of log.split('\n')) {
    if (line.includes('qemuProcessHandleMonitorEOF') && line.includes('Received EOF')) {
      eof = logTime(line);
      look = NaN;
    } else if (!Number.isNaN(eof) && Number.isNaN(look) && line.includes('virProcessKillPainfullyDelay')) {
      look = logTime(line);
    } else if (!Number.isNaN(look) && line.includes('qemuProcessStop') && line.includes('Shutting down')) {
      out.push({ eofToLook: look - eof, lookToStop: logTime(line) - look });
      eof = NaN;
      look = NaN;
    }
  }
  return out;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function compile(dir: string, name: string, libs: string[]): Promise<string> {
  const out = join(dir, name);
  await run('cc', ['-O2', '-Wall', '-o', out, join(here, `${name}.c`), ...libs]);
  return out;
}

async function bindingKills(conn: LibvirtConnection, uuid: string, qemuPid: () => number, kills: number) {
  const { lifecycleEvent } = await import('../../test/rig/waiters.js');
  const samples: number[] = [];
  for (let i = 0; i < kills; i++) {
    const started = lifecycleEvent(conn, uuid, 'started', 30_000);
    await conn.domainCreate(uuid);
    await started;
    const pid = qemuPid();
    // As the C client: QEMU settles into its run loop first.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = lifecycleEvent(conn, uuid, 'stopped', 10_000);
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await stopped;
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** One rig host per reaper; the C client's kills, then the binding's. */
export async function compareReapers(kills: number): Promise<ReaperFigures[]> {
  const { Rig } = await import('../../test/rig/rig.js');
  const { guestOnRig } = await import('../../test/rig/guest.js');
  const bin = mkdtempSync(join(tmpdir(), 'vf-crash-'));
  try {
    const { stdout: flags } = await run('pkg-config', ['--cflags', '--libs', 'libvirt']);
    const client = await compile(bin, 'crash-latency', [...flags.trim().split(/\s+/), '-lpthread']);
    const autoreap = await compile(bin, 'autoreap', []);
    const out: ReaperFigures[] = [];
    const reapers: Array<[string, string, string[]]> = [
      ['tini -s', 'tini', ['tini', '-s', '-g', '--']],
      ['autoreap', 'kernel', [autoreap]],
    ];
    for (const [label, tag, reaper] of reapers) {
      const rig = await Rig.start({ hosts: 1, diskLeases: false, reaper });
      try {
        const host = rig.hosts[0]!;
        const admin = `libvirtd:///system?socket=${join(host.runDir, 'libvirt-admin-sock')}`;
        await run('virt-admin', ['-c', admin, 'daemon-log-filters', LOG_FILTERS]);
        // The path as the host sees it: its log directory is bound over /var/log/libvirt.
        await run('virt-admin', ['-c', admin, 'daemon-log-outputs', '1:file:/var/log/libvirt/crash-debug.log']);
        const guest = await guestOnRig(rig, `crash-${tag}`);
        const conn = await LibvirtConnection.open(host.uri);
        await conn.defineXML(guest.xml);
        const pidfile = join(host.runDir, 'qemu', `${guest.name}.pid`);
        const socket = guest.commandSocket(host);
        const { stdout } = await run(client, [host.uri, guest.name, pidfile, String(kills), socket], {
          maxBuffer: 1 << 24,
        });
        process.stdout.write(`\n[${label}] C client, per kill:\n${stdout}`);
        const lines = stdout.trim().split('\n');
        const c = lines[lines.length - 1] ?? '';
        const cEvents = lines.filter((l) => /^\s*\d+\s/.test(l)).map((l) => Number(l.trim().split(/\s+/)[4]));
        const binding = await bindingKills(conn, guest.uuid, () => host.qemuPid(guest.name), kills);
        await conn.domainUndefine(guest.uuid);
        await conn.close();
        const stops = stopsInLog(readFileSync(join(host.logDir, 'crash-debug.log'), 'utf8'));
        out.push({ reaper: label, c, cEvents, binding, stops });
      } finally {
        await rig.teardown();
      }
    }
    return out;
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

function dist(values: number[]): string {
  const b = [...values].sort((x, y) => x - y);
  const slow = b.filter((ms) => ms > 100).length;
  return `p50 ${percentile(b, 50).toFixed(1)} ms, p99 ${percentile(b, 99).toFixed(1)} ms, max ${b[b.length - 1]?.toFixed(1)} ms; over 100 ms: ${slow} of ${b.length}`;
}

export function printReapers(figures: ReaperFigures[]): void {
  console.log('');
  console.log('kill -9 of QEMU -> lifecycle event, real libvirtd over qemu+tcp (rig):');
  for (const f of figures) {
    const n = f.cEvents.length;
    const slept = f.stops.filter((s) => s.lookToStop >= 150);
    // The kills in log order: the C client's, then the binding's.
    const minusSleep = (events: number[], offset: number) =>
      events.map((ms, i) => {
        const stop = f.stops[offset + i];
        return stop && stop.lookToStop >= 150 ? ms - stop.lookToStop : ms;
      });
    console.log(`  reaper ${f.reaper}:`);
    console.log(`    C client: ${f.c}`);
    console.log(`    binding (JavaScript listener): ${dist(f.binding)}`);
    console.log(
      `    libvirtd's log, ${f.stops.length} stops: EOF -> look for QEMU p50 ${percentile(
        f.stops.map((s) => s.eofToLook).sort((x, y) => x - y),
        50,
      ).toFixed(0)} ms; the look found it and slept: ${slept.length} (${slept.map((s) => s.lookToStop).join(', ')} ms)`,
    );
    if (f.stops.length === 2 * n) {
      console.log(`    without that sleep, C client: ${dist(minusSleep(f.cEvents, 0))}`);
      console.log(`    without that sleep, binding:  ${dist(minusSleep(f.binding, n))}`);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--kills');
  const kills = i >= 0 ? Number(process.argv[i + 1]) : 20;
  printReapers(await compareReapers(kills));
}
