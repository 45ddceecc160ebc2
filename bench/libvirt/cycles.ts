// The libvirt binding's bench: prints figures, passes or fails nothing.
//
//   node --expose-gc --import tsx bench/libvirt/cycles.ts [--cycles N] [--calls N]
//     [--rounds N] [--connections N] [--kills N] [--no-rig]      (or: npx tsx …)
//
// 1. define+start+destroy+undefine cycles per second on libvirt's test driver,
//    side by side in one run: the binding (one connection; then several
//    connections at once), one `virsh` process in batch mode (the C library's
//    own speed), and one `virsh` process per call (what shell-out tools do).
// 2. Event latency from `kill -9` of a QEMU process to the JavaScript
//    lifecycle event, on a real libvirtd of the test rig (needs root).
// 3. 100,000 calls on the test driver, twice, with RSS before and after each.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { el, serialize } from '../../test/rig/domain-xml.js';

const run = promisify(execFile);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const CYCLES = arg('cycles', 2000);
const CALLS = arg('calls', 100_000);
const ROUNDS = arg('rounds', 2);
const KILLS = arg('kills', 20);
const CONNECTIONS = arg('connections', 4);
const WITH_RIG = !process.argv.includes('--no-rig');

const dir = mkdtempSync(join(tmpdir(), 'vf-bench-'));

const TEST_NS = 'http://libvirt.org/schemas/domain/test/1.0';

/** A test-driver domain; `shutoff` marks one inside a definition file as not running. */
function domainXml(name: string, uuid: string, shutoff = false): string {
  return serialize(
    el(
      'domain',
      shutoff ? { type: 'test', 'xmlns:test': TEST_NS } : { type: 'test' },
      ...(shutoff ? [el('test:runstate', {}, 5)] : []),
      el('name', {}, name),
      el('uuid', {}, uuid),
      el('memory', { unit: 'KiB' }, 131072),
      el('vcpu', {}, 1),
      el('os', {}, el('type', { arch: 'x86_64' }, 'hvm')),
    ),
  );
}

/** A private simulated host: a test-driver definition file (optionally holding one domain). */
function hostFile(tag: string, domain?: string): string {
  const cpu = el(
    'cpu',
    {},
    el('mhz', {}, 2000),
    el('model', {}, 'x86_64'),
    el('nodes', {}, 1),
    el('sockets', {}, 1),
    el('cores', {}, 4),
    el('threads', {}, 1),
    el('active', {}, 4),
  );
  const file = join(dir, `${tag}.xml`);
  // The domain element goes in as already-serialized, escaped XML.
  const nodeXml = serialize(el('node', {}, cpu, el('memory', {}, 8388608))).replace(
    '</node>',
    `${domain ?? ''}</node>`,
  );
  writeFileSync(file, nodeXml);
  return `test://${file}`;
}

function rate(cycles: number, ms: number): number {
  return (cycles * 1000) / ms;
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

async function bindingCycles(conn: LibvirtConnection, tag: string, cycles: number): Promise<void> {
  for (let i = 0; i < cycles; i++) {
    const uuid = randomUUID();
    await conn.defineXML(domainXml(`${tag}-${i}`, uuid));
    await conn.domainCreate(uuid);
    await conn.domainDestroy(uuid);
    await conn.domainUndefine(uuid);
  }
}

async function benchBindingSequential(cycles: number): Promise<number> {
  const conn = await LibvirtConnection.open(hostFile('seq'));
  await bindingCycles(conn, 'warm', 100);
  const t0 = performance.now();
  await bindingCycles(conn, 'seq', cycles);
  const ms = performance.now() - t0;
  await conn.close();
  return rate(cycles, ms);
}

async function benchBindingParallel(cycles: number, connections: number): Promise<number> {
  const conns = await Promise.all(
    Array.from({ length: connections }, (_, c) => LibvirtConnection.open(hostFile(`par${c}`))),
  );
  await Promise.all(conns.map((conn, c) => bindingCycles(conn, `warm${c}`, 100)));
  const per = Math.ceil(cycles / connections);
  const t0 = performance.now();
  await Promise.all(conns.map((conn, c) => bindingCycles(conn, `par${c}`, per)));
  const ms = performance.now() - t0;
  await Promise.all(conns.map((c) => c.close()));
  return rate(per * connections, ms);
}

/** One virsh process, fed every command on stdin (batch mode). */
async function benchVirshBatch(cycles: number): Promise<number> {
  const lines: string[] = [];
  for (let i = 0; i < cycles; i++) {
    const name = `batch-${i}`;
    const file = join(dir, `${name}.xml`);
    writeFileSync(file, domainXml(name, randomUUID()));
    lines.push(`define ${file}`, `start ${name}`, `destroy ${name}`, `undefine ${name}`);
  }
  const input = `${lines.join('\n')}\nquit\n`;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('virsh', ['-q', '-c', hostFile('batch')], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`virsh exited ${code}`))));
    child.stdin.end(input);
  });
  return rate(cycles, performance.now() - t0);
}

/**
 * One virsh process per call. The test driver's state lives in the process
 * that opened it, so each call opens a definition file that already holds
 * the domain (defined, or running for destroy): every process does exactly
 * its one call plus the connection open, as a shell-out tool would.
 */
async function benchVirshPerCall(cycles: number): Promise<number> {
  const name = 'percall';
  const uuid = randomUUID();
  const xmlFile = join(dir, `${name}.xml`);
  writeFileSync(xmlFile, domainXml(name, uuid));
  const empty = hostFile('percall-empty');
  const defined = hostFile('percall-defined', domainXml(name, uuid, true));
  const running = hostFile('percall-running', domainXml(name, uuid));
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    await run('virsh', ['-q', '-c', empty, 'define', xmlFile]);
    await run('virsh', ['-q', '-c', defined, 'start', name]);
    await run('virsh', ['-q', '-c', running, 'destroy', name]);
    await run('virsh', ['-q', '-c', defined, 'undefine', name]);
  }
  return rate(cycles, performance.now() - t0);
}

function rssMiB(): number {
  return process.memoryUsage().rss / (1 << 20);
}

/** RSS after a warm-up, then after each round of `calls` calls (five per domain cycle). */
async function benchMemory(calls: number, rounds: number): Promise<{ rssMiB: number[]; perSecond: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const conn = await LibvirtConnection.open(hostFile('memory'));
  await bindingCycles(conn, 'mwarm', 500);
  gc?.();
  const rss = [rssMiB()];
  const t0 = performance.now();
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < calls / 5; i++) {
      const uuid = randomUUID();
      await conn.defineXML(domainXml(`mem-${round}-${i}`, uuid));
      await conn.domainCreate(uuid);
      await conn.domainGetState(uuid);
      await conn.domainDestroy(uuid);
      await conn.domainUndefine(uuid);
    }
    gc?.();
    rss.push(rssMiB());
  }
  const perSecond = (calls * rounds * 1000) / (performance.now() - t0);
  await conn.close();
  return { rssMiB: rss, perSecond };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function benchKillLatency(kills: number): Promise<number[]> {
  const { Rig } = await import('../../test/rig/rig.js');
  const { guestOnRig } = await import('../../test/rig/guest.js');
  const { lifecycleEvent } = await import('../../test/rig/waiters.js');
  const rig = await Rig.start({ hosts: 1, diskLeases: false });
  const samples: number[] = [];
  try {
    const host = rig.hosts[0]!;
    const conn = await LibvirtConnection.open(host.uri);
    const guest = await guestOnRig(rig, 'latency');
    await conn.defineXML(guest.xml);
    for (let i = 0; i < kills; i++) {
      await conn.domainCreate(guest.uuid);
      const pid = host.qemuPid(guest.name);
      const stopped = lifecycleEvent(conn, guest.uuid, 'stopped', 10_000);
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      await stopped;
      samples.push(performance.now() - t0);
    }
    await conn.domainUndefine(guest.uuid);
    await conn.close();
  } finally {
    await rig.teardown();
  }
  return samples.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  console.log(`libvirt binding bench (test driver; ${CYCLES} define+start+destroy+undefine cycles per run)`);
  const seq = await benchBindingSequential(CYCLES);
  const par = await benchBindingParallel(CYCLES, CONNECTIONS);
  const batch = await benchVirshBatch(CYCLES);
  const perCallCycles = Math.max(5, Math.round(CYCLES / 100));
  const perCall = await benchVirshPerCall(perCallCycles);
  console.log('');
  console.log('                                         cycles/s   vs virsh batch   vs virsh per call');
  const row = (label: string, r: number) =>
    console.log(
      `${label.padEnd(40)} ${fmt(r).padStart(8)}   ${(r / batch).toFixed(2).padStart(13)}×   ${(r / perCall).toFixed(1).padStart(15)}×`,
    );
  row('binding, 1 connection, sequential', seq);
  row(`binding, ${CONNECTIONS} connections at once`, par);
  row('virsh, one process in batch mode', batch);
  row(`virsh, one process per call (${perCallCycles} cycles)`, perCall);

  const mem = await benchMemory(CALLS, ROUNDS);
  console.log('');
  const steps = mem.rssMiB.map((m) => m.toFixed(1)).join(' -> ');
  const gcNote = (globalThis as { gc?: unknown }).gc ? 'after GC' : 'no --expose-gc';
  console.log(
    `${ROUNDS} × ${CALLS} calls on one connection: ${fmt(mem.perSecond)} calls/s; RSS (MiB, ${gcNote}) at start and after each round: ${steps}`,
  );

  if (WITH_RIG) {
    const samples = await benchKillLatency(KILLS);
    console.log('');
    console.log(
      `kill -9 of QEMU -> JavaScript lifecycle event (real libvirtd over qemu+tcp, ${samples.length} kills): p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, max ${samples[samples.length - 1]?.toFixed(1)} ms`,
    );
    const slow = samples.filter((ms) => ms > 100);
    console.log(`  over 100 ms: ${slow.length} (${slow.map((ms) => ms.toFixed(0)).join(', ') || 'none'})`);
  }
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
