// The simulated hosts' share of the controller's RSS (bench/scale, step 8).
//
//   node --expose-gc --max-semi-space-size=1 --import tsx bench/scale/hosts-memory.ts DOMAINS.json [--json]
//
// DOMAINS.json: { hosts: [{ name, cpus, memoryGiB }], domains: [{ host, uuid, xml }] }, written by
// scale.ts from what the controller made (the same declarations; the same XML on the same host).
//
// A test:/// host lives in the process that opened it: its capabilities, its domains (parsed
// definitions, fake running state) and the binding's worker thread for its connection are all in
// the controller's RSS during the bench, and none of it exists on real hosts (there, the domains
// live in libvirtd on the host). This plain process does only that part, through the same
// binding and connection pool the controller uses: it opens the same kind of hosts (same
// declarations, one event subscription each, as the Fleet does) and makes the same domains (the
// controller's XML, on the host it chose) with the same libvirt calls, and reports RSS (VmRSS)
// before and after each step. The differences are the estimate the bench prints. It runs with
// the controller's MALLOC_ARENA_MAX, if deploy/ sets one: most of what the domains cost is
// malloc arenas of the connections' threads.
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { testHosts } from '../../test/integration/hypervisor/test-hosts.js';

export interface HostsMemoryInput {
  hosts: Array<{ name: string; cpus: number; memoryGiB: number }>;
  domains: Array<{ host: string; uuid: string; xml: string }>;
}

const GiB = 1024 * 1024; // KiB

export interface HostsMemory {
  hosts: number;
  domains: number;
  /**
   * VmRSS of this process before any host was opened, KiB; and after each step, less what V8's
   * heap grew meanwhile (this process's own JavaScript, not the hosts').
   */
  baseKiB: number;
  /** After opening the hosts (and subscribing to their events), KiB. */
  hostsKiB: number;
  /** After defining and starting the domains, KiB. */
  domainsKiB: number;
  /** JS heap used at the end (the domains' part of it is only our bookkeeping), bytes. */
  heapUsed: number;
}

/** VmRSS less V8's committed heap, KiB: the native memory of the process. */
function rssKiB(): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return (match ? Number(match[1]) : 0) - getHeapStatistics().total_heap_size / 1024;
}

async function settle(): Promise<void> {
  // Let freed memory go back (glibc trims on free; V8 on GC) before reading RSS.
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(input: HostsMemoryInput): Promise<HostsMemory> {
  const files = testHosts();
  const pool = new LibvirtConnectionPool();
  try {
    const hypervisors = new Map(
      input.hosts.map((h) => [
        h.name,
        new LibvirtHypervisor(pool, files.host(`mem-${h.name}`, { cpus: h.cpus, memoryKiB: h.memoryGiB * GiB })),
      ]),
    );
    await settle();
    const baseKiB = rssKiB();
    // As the Fleet does: one subscription (event stream) per host, then facts.
    for (const h of hypervisors.values()) h.subscribe(() => {});
    await Promise.all([...hypervisors.values()].map((h) => h.facts()));
    await settle();
    const hostsKiB = rssKiB();
    // The libvirt calls the controller makes for a new VM (its first reconcile: look up, define,
    // state, start, state, both definitions; its second: look up, both definitions), so that
    // what they leave in the process (malloc arenas, libvirt's caches) is counted here too.
    // The controller asks libvirt's schema check once per shape of definition (all of the
    // bench's VMs have one shape): the first define only.
    let validate = true;
    for (const domain of input.domains) {
      const hypervisor = hypervisors.get(domain.host)!;
      await hypervisor.lookup(domain.uuid);
      await hypervisor.ensureDefined(domain.xml, { validate });
      validate = false;
      await hypervisor.state(domain.uuid);
      await hypervisor.start(domain.uuid);
      await hypervisor.state(domain.uuid);
      await Promise.all([hypervisor.xml(domain.uuid), hypervisor.xml(domain.uuid, { inactive: true })]);
      await hypervisor.lookup(domain.uuid);
      await Promise.all([hypervisor.xml(domain.uuid), hypervisor.xml(domain.uuid, { inactive: true })]);
    }
    const count = input.domains.length;
    input.domains = []; // only the hosts' copy of the XML should count
    await settle();
    const domainsKiB = rssKiB();
    return {
      hosts: input.hosts.length,
      domains: count,
      baseKiB,
      hostsKiB,
      domainsKiB,
      heapUsed: process.memoryUsage().heapUsed,
    };
  } finally {
    await pool.closeAll();
    files.cleanup();
  }
}

const file = process.argv.slice(2).find((a) => !a.startsWith('--'));
if (!file) throw new Error('usage: hosts-memory.ts DOMAINS.json [--json]');
const result = await main(JSON.parse(readFileSync(file, 'utf8')) as HostsMemoryInput);
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  const MiB = (kib: number) => (kib / 1024).toFixed(0);
  process.stdout.write(
    `plain process: ${MiB(result.baseKiB)} MiB; + ${result.hosts} test:/// hosts opened and subscribed: +${MiB(result.hostsKiB - result.baseKiB)} MiB; ` +
      `+ ${result.domains} domains defined and started: +${MiB(result.domainsKiB - result.hostsKiB)} MiB (total ${MiB(result.domainsKiB)} MiB)\n`,
  );
}
