// Which of a domain's writable disks are raw. An internal snapshot lives inside each qcow2 disk
// file, so one raw writable disk makes the host refuse the whole snapshot: we refuse first,
// naming the disk as the VM's spec calls it. Read-only disks and CD-ROMs are not captured.
import { child, childrenNamed, parseXml } from '../../hypervisors/xml.js';
import { volumeNameOf } from '../vm-storage.js';
import type { VmObject } from '../resources.js';

export interface RawDisk {
  /** spec.disks[].name, or the guest device (vda…) for a disk the spec does not name. */
  disk: string;
  /** The file on the host. */
  file: string;
}

/** The writable raw disks of the domain `xml` describes, named after the VM's spec.disks. */
export function rawDisks(xml: string, vm: VmObject): RawDisk[] {
  const devices = child(parseXml(xml), 'devices');
  if (!devices) return [];
  const volumes = (vm.spec.disks ?? []).map((disk) => ({ disk: disk.name, volume: volumeNameOf(vm, disk.name) }));
  const found: RawDisk[] = [];
  for (const disk of childrenNamed(devices, 'disk')) {
    if ((disk.attrs.device ?? 'disk') !== 'disk') continue;
    if (child(disk, 'readonly')) continue;
    if (child(disk, 'driver')?.attrs.type !== 'raw') continue;
    const source = child(disk, 'source');
    const file = String(source?.attrs.file ?? source?.attrs.dev ?? source?.attrs.volume ?? '');
    const base = file.slice(file.lastIndexOf('/') + 1);
    const named = volumes.find(({ volume }) => base === volume || base.startsWith(`${volume}.`));
    found.push({ disk: named?.disk ?? String(child(disk, 'target')?.attrs.dev ?? file), file });
  }
  return found;
}
