// The libvirt binding's bench: prints figures, passes or fails nothing.
//
//   node --expose-gc --import tsx bench/libvirt/cycles.ts [--cycles N] [--repeats N]
//     [--kinds N] [--calls N] [--rounds N] [--connections N] [--kills N] [--no-rig]
//     (or: npx tsx …)
//
// 1. define+start+destroy+undefine cycles per second on libvirt's test driver,
//    side by side: the binding (one connection; then several connections at
//    once) and one `virsh` process in batch mode (the C library's own speed),
//    taken in turns `--repeats` times so that a machine shared with other work
//    loads both alike (each ratio is from one turn; the median is printed);
//    then one `virsh` process per call (what shell-out tools do).
// 2. Each call kind on its own, binding beside virsh batch (call-kinds.ts).
// 3. Event latency from `kill -9` of a QEMU process to the lifecycle event,
//    on a real libvirtd of the test rig (needs root): crash-latency.ts.
// 4. 100,000 calls on the test driver, twice, with RSS before and after each.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { bindingKinds, childCpuSeconds, KINDS, virshKinds } from './call-kinds.js';
import { compareReapers, printReapers } from './crash-latency.js';
import { benchDir as dir, domainXml, hostFile as hostFileOf, removeBenchDir } from './test-hosts.js';

const run = promisify(execFile);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const CYCLES = arg('cycles', 2000);
const REPEATS = arg('repeats', 3);
const KIND_CALLS = arg('kinds', 2000);
const CALLS = arg('calls', 100_000);
const ROUNDS = arg('rounds', 2);
const KILLS = arg('kills', 20);
const CONNECTIONS = arg('connections', 4);
const WITH_RIG = !process.argv.includes('--no-rig');

/** A private simulated host, optionally holding one domain. */
function hostFile(tag: string, domain?: string): string {
  return hostFileOf(tag, domain === undefined ? [] : [domain]);
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

/** A run's pace: cycles per second (wall clock) and CPU time per cycle (µs, all threads). */
interface Pace {
  rate: number;
  cpuUs: number;
  /** Voluntary context switches per cycle (the binding: each thread hop is a wait and a wake). */
  switches?: number;
}

function cpuSince(start: NodeJS.CpuUsage, cycles: number): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / cycles;
}

async function benchBindingSequential(cycles: number): Promise<Pace> {
  const conn = await LibvirtConnection.open(hostFile('seq'));
  await bindingCycles(conn, 'warm', 100);
  const cpu = process.cpuUsage();
  const switches0 = process.resourceUsage().voluntaryContextSwitches;
  const t0 = performance.now();
  await bindingCycles(conn, 'seq', cycles);
  const ms = performance.now() - t0;
  const cpuUs = cpuSince(cpu, cycles);
  const switches = (process.resourceUsage().voluntaryContextSwitches - switches0) / cycles;
  await conn.close();
  return { rate: rate(cycles, ms), cpuUs, switches };
}

async function benchBindingParallel(cycles: number, connections: number): Promise<Pace> {
  const conns = await Promise.all(
    Array.from({ length: connections }, (_, c) => LibvirtConnection.open(hostFile(`par${c}`))),
  );
  await Promise.all(conns.map((conn, c) => bindingCycles(conn, `warm${c}`, 100)));
  const per = Math.ceil(cycles / connections);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(conns.map((conn, c) => bindingCycles(conn, `par${c}`, per)));
  const ms = performance.now() - t0;
  const cpuUs = cpuSince(cpu, per * connections);
  await Promise.all(conns.map((c) => c.close()));
  return { rate: rate(per * connections, ms), cpuUs };
}

/**
 * One virsh process, fed every command on stdin (batch mode). Its CPU time is
 * the shell's `times` for its children (10 ms ticks): a shell runs it.
 */
async function benchVirshBatch(cycles: number): Promise<Pace> {
  const lines: string[] = [];
  for (let i = 0; i < cycles; i++) {
    const name = `batch-${i}`;
    const file = join(dir, `${name}.xml`);
    writeFileSync(file, domainXml(name, randomUUID()));
    lines.push(`define ${file}`, `start ${name}`, `destroy ${name}`, `undefine ${name}`);
  }
  const input = `${lines.join('\n')}\nquit\n`;
  const t0 = performance.now();
  const times = await new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['-c', 'virsh -q -c "$1" >/dev/null && times', 'sh', hostFile('batch')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`virsh exited ${code}`))));
    child.stdin.end(input);
  });
  const ms = performance.now() - t0;
  return { rate: rate(cycles, ms), cpuUs: (childCpuSeconds(times) * 1e6) / cycles };
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
  const defined = hostFile('percall-defined', domainXml(name, uuid, 5));
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

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

async function main(): Promise<void> {
  console.log(
    `libvirt binding bench (test driver; ${CYCLES} define+start+destroy+undefine cycles per run; load ${load()})`,
  );
  const turns: Array<{ seq: Pace; batch: Pace; par: Pace }> = [];
  for (let turn = 0; turn < REPEATS; turn++) {
    const seq = await benchBindingSequential(CYCLES);
    const batch = await benchVirshBatch(CYCLES);
    const par = await benchBindingParallel(CYCLES, CONNECTIONS);
    turns.push({ seq, batch, par });
  }
  const perCallCycles = Math.max(5, Math.round(CYCLES / 100));
  const perCall = await benchVirshPerCall(perCallCycles);
  console.log('');
  console.log(
    `cycles/s in turns (CPU µs per cycle, all threads), binding on 1 connection, virsh batch, binding on ${CONNECTIONS} connections:`,
  );
  console.log(
    `turn   binding 1 conn      virsh batch   binding ×${CONNECTIONS}         1 conn ÷ virsh   ×${CONNECTIONS} ÷ virsh`,
  );
  const cell = (p: Pace) => `${fmt(p.rate).padStart(6)} (${p.cpuUs.toFixed(0).padStart(4)} µs)`;
  turns.forEach((t, i) =>
    console.log(
      `${String(i + 1).padStart(4)}   ${cell(t.seq)}   ${cell(t.batch)}   ${cell(t.par)}   ${(t.seq.rate / t.batch.rate).toFixed(2).padStart(13)}×   ${(t.par.rate / t.batch.rate).toFixed(2).padStart(9)}×`,
    ),
  );
  console.log(
    `median ratio: 1 connection ${median(turns.map((t) => t.seq.rate / t.batch.rate)).toFixed(2)}× virsh batch, ${CONNECTIONS} connections ${median(turns.map((t) => t.par.rate / t.batch.rate)).toFixed(2)}×; CPU per cycle, binding ÷ virsh: ${median(turns.map((t) => t.seq.cpuUs / t.batch.cpuUs)).toFixed(2)}`,
  );
  console.log(
    `binding on 1 connection: ${median(turns.map((t) => t.seq.switches ?? NaN)).toFixed(1)} voluntary context switches per cycle (median of the turns; 4 calls, each a hop there and back)`,
  );
  console.log(
    `virsh, one process per call (${perCallCycles} cycles): ${fmt(perCall)} cycles/s (binding on 1 connection: ${(median(turns.map((t) => t.seq.rate)) / perCall).toFixed(0)}× that)`,
  );

  const bk = await bindingKinds(KIND_CALLS);
  const vk = await virshKinds(KIND_CALLS);
  console.log('');
  console.log(
    `µs per call, ${KIND_CALLS} of one kind in a row, wall / CPU (virsh: its start-up subtracted; load ${load()}):`,
  );
  console.log('kind         binding        virsh batch    wall ÷   CPU ÷');
  const pair = (p: { wallUs: number; cpuUs: number }) =>
    `${p.wallUs.toFixed(0).padStart(5)} / ${p.cpuUs.toFixed(0).padStart(4)}`;
  for (const kind of KINDS) {
    console.log(
      `${kind.padEnd(10)} ${pair(bk[kind])}   ${pair(vk[kind])}   ${(bk[kind].wallUs / vk[kind].wallUs).toFixed(2).padStart(6)}   ${(bk[kind].cpuUs / vk[kind].cpuUs).toFixed(2).padStart(5)}`,
    );
  }

  const mem = await benchMemory(CALLS, ROUNDS);
  console.log('');
  const steps = mem.rssMiB.map((m) => m.toFixed(1)).join(' -> ');
  const gcNote = (globalThis as { gc?: unknown }).gc ? 'after GC' : 'no --expose-gc';
  console.log(
    `${ROUNDS} × ${CALLS} calls on one connection: ${fmt(mem.perSecond)} calls/s; RSS (MiB, ${gcNote}) at start and after each round: ${steps}`,
  );

  if (WITH_RIG) printReapers(await compareReapers(KILLS));
}

try {
  await main();
} finally {
  removeBenchDir();
}
