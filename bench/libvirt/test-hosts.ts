// Test-driver hosts and domains for the libvirt binding's bench (cycles.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { el, serialize } from '../../test/rig/domain-xml.js';

const TEST_NS = 'http://libvirt.org/schemas/domain/test/1.0';

export const benchDir = mkdtempSync(join(tmpdir(), 'vf-bench-'));

export function removeBenchDir(): void {
  rmSync(benchDir, { recursive: true, force: true });
}

/** A test-driver domain; `runstate` 5 (shutoff) or 1 (running) marks one inside a definition file. */
export function domainXml(name: string, uuid: string, runstate?: 1 | 5): string {
  return serialize(
    el(
      'domain',
      runstate !== undefined ? { type: 'test', 'xmlns:test': TEST_NS } : { type: 'test' },
      ...(runstate !== undefined ? [el('test:runstate', {}, runstate)] : []),
      el('name', {}, name),
      el('uuid', {}, uuid),
      el('memory', { unit: 'KiB' }, 131072),
      el('vcpu', {}, 1),
      el('os', {}, el('type', { arch: 'x86_64' }, 'hvm')),
    ),
  );
}

/** A private simulated host: a test-driver definition file holding the given (serialized) domains. */
export function hostFile(tag: string, domains: string[] = []): string {
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
  const file = join(benchDir, `${tag}.xml`);
  // The domain elements go in as already-serialized, escaped XML.
  const nodeXml = serialize(el('node', {}, cpu, el('memory', {}, 8388608))).replace(
    '</node>',
    `${domains.join('')}</node>`,
  );
  writeFileSync(file, nodeXml);
  return `test://${file}`;
}
