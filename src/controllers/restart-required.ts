// Which spec fields changed in a way the running domain has not taken yet. libvirt keeps two
// definitions of a running domain: the live one it started with and the persistent one that
// applies at the next start (the controller redefines the persistent one on every spec change).
// Comparing the parts of the two that come from the spec names the fields that wait for a
// restart, and it survives a controller restart, unlike anything remembered in memory.
import { child, childrenNamed, parseXml, type XmlElement } from '../hypervisors/xml.js';

type Summary = Record<string, string>;

function attrs(element: XmlElement | undefined, names: string[]): string {
  return names.map((name) => element?.attrs[name] ?? '').join(',');
}

/** The spec-derived parts of a domain XML, by the spec field they come from. */
function summarize(xml: string): Summary {
  const domain = parseXml(xml);
  const os = child(domain, 'os');
  const devices = child(domain, 'devices');
  const allDisks = devices ? childrenNamed(devices, 'disk') : [];
  // The cloud-init seed (vm/cloud-init.ts) is the disk or CD-ROM whose volume ends in
  // _cloud-init.iso (no spec disk's volume can: their names are DNS labels).
  const isSeed = (disk: XmlElement) => (child(disk, 'source')?.attrs.file ?? '').endsWith('_cloud-init.iso');
  const disks = allDisks.filter((disk) => !isSeed(disk));
  const seeds = allDisks.filter(isSeed);
  const nics = devices ? childrenNamed(devices, 'interface') : [];
  const graphics = devices ? childrenNamed(devices, 'graphics') : [];
  return {
    // The memory the guest has now: a live balloon change moves currentMemory within the maximum
    // the domain started with, which only changes at the next start.
    'spec.memory': `${kib(child(domain, 'currentMemory') ?? child(domain, 'memory'))}`,
    'spec.cpu': [
      child(domain, 'vcpu')?.text ?? '',
      attrs(child(domain, 'cpu', 'topology'), ['sockets', 'cores', 'threads']),
      attrs(child(domain, 'cpu'), ['mode']),
      child(domain, 'cpu', 'model')?.text ?? '',
    ].join('|'),
    'spec.firmware': [
      attrs(os, ['firmware']),
      ...(os
        ? childrenNamed(os, 'firmware').flatMap((f) =>
            childrenNamed(f, 'feature').map((x) => attrs(x, ['name', 'enabled'])),
          )
        : []),
    ].join('|'),
    'spec.kernelBoot': ['kernel', 'initrd', 'cmdline']
      .map((name) => (os ? (child(os, name)?.text ?? '') : ''))
      .join('|'),
    'spec.disks': disks
      .map((disk) =>
        [
          attrs(child(disk, 'source'), ['file']),
          attrs(child(disk, 'target'), ['dev', 'bus']),
          child(disk, 'readonly') ? 'ro' : 'rw',
        ].join(','),
      )
      .join('|'),
    'spec.cloudInit': seeds
      .map((disk) =>
        [disk.attrs.device ?? '', attrs(child(disk, 'source'), ['file']), attrs(child(disk, 'target'), ['bus'])].join(
          ',',
        ),
      )
      .join('|'),
    'spec.networks': nics
      .map((nic) =>
        [
          nic.attrs.type ?? '',
          attrs(child(nic, 'source'), ['network', 'bridge']),
          attrs(child(nic, 'mac'), ['address']),
          attrs(child(nic, 'model'), ['type']),
        ].join(','),
      )
      .join('|'),
    // The kind of listen only: the live definition adds the port, address or socket libvirt chose.
    'spec.graphics': graphics
      .map((g) => [g.attrs.type ?? '', attrs(child(g, 'listen'), ['type', 'network'])].join(','))
      .join('|'),
  };
}

const UNIT_KIB: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  kb: 1000 / 1024,
  m: 1024,
  mib: 1024,
  mb: 1e6 / 1024,
  g: 1024 ** 2,
  gib: 1024 ** 2,
  gb: 1e9 / 1024,
};

/** A libvirt memory element's amount in KiB (libvirt writes KiB; other units for safety). */
function kib(element: XmlElement | undefined): number {
  if (!element) return 0;
  const unit = (element.attrs.unit ?? 'KiB').toLowerCase();
  return Math.ceil(Number(element.text ?? 0) * (UNIT_KIB[unit] ?? 1));
}

/**
 * The memory to set on the running domain so that it matches its new definition, when that
 * can be done live (balloon): the new amount differs and is within the maximum it started with.
 * Bytes; undefined when nothing can or need be done live.
 */
export function liveMemoryTarget(liveXml: string, persistentXml: string): number | undefined {
  const live = parseXml(liveXml);
  const persistent = parseXml(persistentXml);
  const wanted = kib(child(persistent, 'currentMemory') ?? child(persistent, 'memory'));
  const current = kib(child(live, 'currentMemory') ?? child(live, 'memory'));
  const maximum = kib(child(live, 'memory'));
  if (wanted === 0 || wanted === current || wanted > maximum) return undefined;
  return wanted * 1024;
}

/** Spec fields whose change waits for the next start: where the live and persistent definitions differ. */
export function fieldsAwaitingRestart(liveXml: string, persistentXml: string): string[] {
  const live = summarize(liveXml);
  const persistent = summarize(persistentXml);
  return Object.keys(persistent).filter((field) => live[field] !== persistent[field]);
}
