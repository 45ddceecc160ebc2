// Each call kind on its own, the binding beside one `virsh` in batch mode:
// N calls of one kind in a row, wall-clock and CPU µs per call (CPU: all of
// the process's threads, the bench's own JavaScript included; it moves less
// than wall time on a machine shared with other work). virsh runs each kind
// in a process of its own, on a definition file that already holds the
// domains in the state the call needs; the same process with no commands
// (start-up and reading that file) is measured too and subtracted.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { benchDir, domainXml, hostFile } from './test-hosts.js';

export const KINDS = ['define', 'start', 'state', 'destroy', 'undefine', 'version'] as const;
export type Kind = (typeof KINDS)[number];

export interface PerCall {
  wallUs: number;
  cpuUs: number;
}

/** µs per call of each kind through the binding, one connection, each awaited before the next. */
export async function bindingKinds(n: number): Promise<Record<Kind, PerCall>> {
  const conn = await LibvirtConnection.open(hostFile('kinds'));
  const uuids = Array.from({ length: n }, () => randomUUID());
  const xmls = uuids.map((uuid, i) => domainXml(`kind-${i}`, uuid));
  const out = {} as Record<Kind, PerCall>;
  const time = async (kind: Kind, call: (i: number) => Promise<unknown>): Promise<void> => {
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await call(i);
    const wallUs = ((performance.now() - t0) * 1000) / n;
    const used = process.cpuUsage(cpu);
    out[kind] = { wallUs, cpuUs: (used.user + used.system) / n };
  };
  await time('define', (i) => conn.defineXML(xmls[i]!));
  await time('start', (i) => conn.domainCreate(uuids[i]!));
  await time('state', (i) => conn.domainGetState(uuids[i]!));
  await time('destroy', (i) => conn.domainDestroy(uuids[i]!));
  await time('undefine', (i) => conn.domainUndefine(uuids[i]!));
  await time('version', () => conn.getLibVersion());
  await conn.close();
  return out;
}

/** One virsh process in batch mode: its wall-clock ms, and its CPU ms from the shell's `times` (10 ms ticks). */
async function virshBatch(uri: string, lines: string[]): Promise<{ wallMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const times = await new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['-c', 'virsh -q -c "$1" >/dev/null && times', 'sh', uri], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`virsh exited ${code}`))));
    child.stdin.end(`${[...lines, 'quit'].join('\n')}\n`);
  });
  const wallMs = performance.now() - t0;
  return { wallMs, cpuMs: childCpuSeconds(times) * 1000 };
}

/** The children's line of the shell's `times` ("0m1.234s 0m0.100s"), user + system, in seconds. */
export function childCpuSeconds(times: string): number {
  const children = [...(times.trim().split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)];
  return children.reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
}

/** µs per call of each kind through one virsh process in batch mode (its start-up subtracted). */
export async function virshKinds(n: number): Promise<Record<Kind, PerCall>> {
  const names = Array.from({ length: n }, (_, i) => `vkind-${i}`);
  const uuids = names.map(() => randomUUID());
  const files = names.map((name, i) => {
    const file = join(benchDir, `${name}.xml`);
    writeFileSync(file, domainXml(name, uuids[i]!));
    return file;
  });
  const holding = (runstate?: 1 | 5): string[] =>
    runstate === undefined ? [] : names.map((name, i) => domainXml(name, uuids[i]!, runstate));
  const phases: Array<[Kind, 1 | 5 | undefined, (i: number) => string]> = [
    ['define', undefined, (i) => `define ${files[i]}`],
    ['start', 5, (i) => `start ${names[i]}`],
    ['state', 1, (i) => `domstate ${uuids[i]}`],
    ['destroy', 1, (i) => `destroy ${names[i]}`],
    ['undefine', 5, (i) => `undefine ${names[i]}`],
    ['version', undefined, () => 'version'],
  ];
  const out = {} as Record<Kind, PerCall>;
  for (const [kind, runstate, line] of phases) {
    const uri = hostFile(`vkind-${kind}`, holding(runstate));
    const idle = await virshBatch(uri, []);
    const busy = await virshBatch(
      uri,
      names.map((_, i) => line(i)),
    );
    out[kind] = {
      wallUs: (Math.max(0, busy.wallMs - idle.wallMs) * 1000) / n,
      cpuUs: (Math.max(0, busy.cpuMs - idle.cpuMs) * 1000) / n,
    };
  }
  return out;
}
