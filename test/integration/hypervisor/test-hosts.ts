// Simulated hosts for the hypervisor tests: libvirt test-driver definition files in a temp dir
// (each file is a host of its own, unlike test:///default, which one process shares), and event
// waiters that resolve on the event they mean, without timeouts of their own.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostEvent, Hypervisor } from '../../../src/hypervisors/hypervisor.js';
import { el, serializeXml } from '../../../src/hypervisors/xml.js';

export interface TestHostSpec {
  cpus?: number;
  memoryKiB?: number;
  auth?: { username: string; password: string };
  /** An active libvirt network 'default' (192.168.122.0/24), for VMs with interfaces. */
  network?: boolean;
}

export interface TestHosts {
  /** The temp dir the definition files are in; tests may put other files there. */
  dir: string;
  /** Writes a host definition file and returns its test:/// URI. */
  host(name: string, spec?: TestHostSpec): string;
  cleanup(): void;
}

export function testHosts(): TestHosts {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-hv-'));
  return {
    dir,
    host(name, spec = {}) {
      const cpus = spec.cpus ?? 4;
      const memoryKiB = spec.memoryKiB ?? 8 * 1024 * 1024;
      const node = el(
        'node',
        {},
        el(
          'cpu',
          {},
          el('mhz', {}, '2000'),
          el('model', {}, 'x86_64'),
          el('nodes', {}, '1'),
          el('sockets', {}, '1'),
          el('cores', {}, String(cpus)),
          el('threads', {}, '1'),
          el('active', {}, String(cpus)),
        ),
        el('memory', {}, String(memoryKiB)),
        spec.auth && el('auth', {}, el('user', { password: spec.auth.password }, spec.auth.username)),
        spec.network &&
          el(
            'network',
            {},
            el('name', {}, 'default'),
            el('bridge', { name: 'virbr0' }),
            el('ip', { address: '192.168.122.1', netmask: '255.255.255.0' }),
          ),
      );
      const file = join(dir, `${name}.xml`);
      writeFileSync(file, serializeXml(node));
      return `test://${file}`;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Resolves with the first event of `hypervisor` that matches; subscribe before acting. */
export function nextEvent<E extends HostEvent>(
  hypervisor: Hypervisor,
  match: (event: HostEvent) => event is E,
): Promise<E>;
export function nextEvent(hypervisor: Hypervisor, match: (event: HostEvent) => boolean): Promise<HostEvent>;
export function nextEvent(hypervisor: Hypervisor, match: (event: HostEvent) => boolean): Promise<HostEvent> {
  return new Promise((resolve) => {
    const off = hypervisor.subscribe((event) => {
      if (match(event)) {
        off();
        resolve(event);
      }
    });
  });
}

/** Matches the lifecycle event `event` of domain `uuid`. */
export function lifecycle(uuid: string, event: string) {
  return (e: HostEvent): e is Extract<HostEvent, { type: 'lifecycle' }> =>
    e.type === 'lifecycle' && e.domain.uuid === uuid && e.event === event;
}
