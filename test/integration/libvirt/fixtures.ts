// Test fixtures for the libvirt binding: test-driver host definitions and
// domain XML, written with the project's XML module (no XML is built by
// pasting strings), and helpers that wait for events without sleeping.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainEvent, LibvirtConnection, LifecycleEvent } from '../../../src/hypervisors/libvirt/native/index.js';
import { el, serialize, type Child } from '../../harness/xml.js';

export { el, serialize };

export interface DomainSpec {
  name: string;
  uuid?: string;
  memoryKiB?: number;
  vcpus?: number;
}

/** A minimal domain the test driver accepts. */
export function domainXml(spec: DomainSpec): string {
  const children: Child[] = [el('name', {}, spec.name)];
  if (spec.uuid) children.push(el('uuid', {}, spec.uuid));
  children.push(
    el('memory', { unit: 'KiB' }, spec.memoryKiB ?? 131072),
    el('vcpu', {}, spec.vcpus ?? 1),
    el('os', {}, el('type', { arch: 'x86_64' }, 'hvm')),
  );
  return serialize(el('domain', { type: 'test' }, ...children));
}

export interface HostSpec {
  cpus: { sockets: number; cores: number; threads: number; mhz: number; model: string };
  memoryKiB: number;
  auth?: { username: string; password: string };
}

/** A test:/// host definition in a fresh temp dir; returns its URI and a cleanup. */
export function testHost(spec: HostSpec): { uri: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-libvirt-'));
  const { sockets, cores, threads, mhz, model } = spec.cpus;
  const node = el(
    'node',
    {},
    el(
      'cpu',
      {},
      el('mhz', {}, mhz),
      el('model', {}, model),
      el('nodes', {}, 1),
      el('sockets', {}, sockets),
      el('cores', {}, cores),
      el('threads', {}, threads),
      el('active', {}, sockets * cores * threads),
    ),
    el('memory', {}, spec.memoryKiB),
  );
  if (spec.auth) {
    node.children.push(el('auth', {}, el('user', { password: spec.auth.password }, spec.auth.username)));
  }
  const file = join(dir, 'host.xml');
  writeFileSync(file, serialize(node));
  return { uri: `test://${file}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A definition file libvirt cannot parse: opening it fails with a libvirt
 * error. (A missing file fails too, but libxml2 then prints to stderr.)
 */
export function brokenHost(): { uri: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-libvirt-'));
  const file = join(dir, 'host.xml');
  writeFileSync(file, '<node><cpu>');
  return { uri: `test://${file}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves with the first domain event that matches; no timeout of its own (jest's applies). */
export function nextDomainEvent(conn: LibvirtConnection, match: (event: DomainEvent) => boolean): Promise<DomainEvent> {
  return new Promise((resolve) => {
    const off = conn.onDomainEvent((event) => {
      if (match(event)) {
        off();
        resolve(event);
      }
    });
  });
}

/**
 * Resolves with the first lifecycle event `event` of domain `uuid`. Events of
 * earlier calls may still be on their way when a later call has resolved, so
 * tests wait for the one they mean rather than for "the next one".
 */
export function lifecycleEvent(
  conn: LibvirtConnection,
  uuid: string,
  event: LifecycleEvent['event'],
): Promise<LifecycleEvent> {
  return nextDomainEvent(
    conn,
    (e) => e.type === 'lifecycle' && e.domain.uuid === uuid && e.event === event,
  ) as Promise<LifecycleEvent>;
}

let counter = 0;
/** A name unique within this process. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Records the order in which calls settle: `note(name, call)` returns `call`, and pushes `name` onto `order` when it settles. */
export function recorder(): { order: string[]; note: <T>(name: string, call: Promise<T>) => Promise<T> } {
  const order: string[] = [];
  return {
    order,
    note: (name, call) =>
      call.finally(() => {
        order.push(name);
      }),
  };
}
