// The simulated fleet the benches that run a controller share (bench/scale, bench/metrics):
// test-driver hosts of varied capacities from a fixed pattern, and the kernel-boot VMs put on
// them.
import type { VmObject } from '../src/controllers/resources.js';
import type { TestHosts } from '../test/integration/hypervisor/test-hosts.js';

const GiB = 1024 * 1024; // KiB

export interface HostDecl {
  name: string;
  cpus: number;
  memoryGiB: number;
}

/** Varied capacities: 16..64 CPUs, 8..64 GiB, from a fixed pattern (same on every run). */
export function hostDecls(n: number): HostDecl[] {
  const cpus = [16, 24, 32, 48, 64];
  const mem = [8, 16, 24, 32, 48, 64];
  return Array.from({ length: n }, (_, i) => ({
    name: `host-${String(i).padStart(3, '0')}`,
    cpus: cpus[i % cpus.length]!,
    memoryGiB: mem[(i * 7) % mem.length]!,
  }));
}

/** A definition file per host (`tag` keeps sets of hosts apart); their test:/// URIs by host name. */
export function writeHosts(hosts: TestHosts, decls: HostDecl[], tag: string): Map<string, string> {
  return new Map(
    decls.map((h) => [h.name, hosts.host(`${tag}-${h.name}`, { cpus: h.cpus, memoryKiB: h.memoryGiB * GiB })]),
  );
}

/** A kernel-boot VM without disks (128 MiB) in `pool`. */
export function vmObject(name: string, namespace: string, pool: string): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: { hostPoolRef: { name: pool }, memory: '128Mi', kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' } },
  } as unknown as VmObject;
}
