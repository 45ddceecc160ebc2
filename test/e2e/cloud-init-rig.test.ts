// The cloud-init seed on a real libvirtd (test/rig), where volumes take uploads: the step that
// the controller's disks step runs (src/controllers/vm/cloud-init.ts) writes the NoCloud seed
// into a storage pool, the volume read back holds user-data, meta-data and network-config as
// rendered, an unchanged seed is not written again (also by a fresh process, which compares the
// bytes on the host), a changed one is, and libvirt takes the domain with the seed as a
// read-only CD-ROM (bus sata). Needs root and the rig (hack/setup.sh). The guest reading it at boot
// from the default virtio disk is tested in images-rig.test.ts (issue 17 Done 3).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { VmObject } from '../../src/controllers/resources.js';
import { volumeNameOf } from '../../src/controllers/vm-storage.js';
import { CLOUD_INIT_SEED, CloudInitSeeds } from '../../src/controllers/vm/cloud-init.js';
import { buildDomainXml } from '../../src/hypervisors/domain-xml.js';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { child, childrenNamed, parseXml } from '../../src/hypervisors/xml.js';
import { readIso9660 } from '../harness/iso9660.js';
import { Rig } from '../rig/rig.js';

let rig: Rig;
let connections: LibvirtConnectionPool;
let host: LibvirtHypervisor;
let storage: { pool: string; path: string; shared: boolean };

beforeAll(async () => {
  rig = await Rig.start({ hosts: 1 });
  connections = new LibvirtConnectionPool();
  host = new LibvirtHypervisor(connections, rig.hosts[0]!.uri);
  storage = { pool: `seeds-${process.pid}`, path: join(rig.sharedDir, `seeds-${process.pid}`), shared: false };
}, 120_000);

afterAll(async () => {
  await connections?.closeAll();
  await rig?.teardown();
}, 60_000);

const noSecrets = () => () => Promise.resolve({ status: 'not-found' as const });

function vmWith(cloudInit: Record<string, unknown>, uid: string = randomUUID()): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { namespace: 'lab', name: 'web-1', uid, creationTimestamp: '2026-12-07T10:00:00Z' },
    spec: { cloudInit },
  } as unknown as VmObject;
}

describe('the cloud-init seed on a real libvirtd', () => {
  const userData = '#cloud-config\nhostname: web-1\nruncmd:\n  - [sh, -c, "echo \'a: b\' > /tmp/x"]\n';
  const networkConfig = 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n';

  it('is written once, holds the rendered files, and is rewritten when the spec changes', async () => {
    const vm = vmWith({ userData, networkConfig });
    const seeds = new CloudInitSeeds(noSecrets);
    const first = await seeds.ensure(vm, storage, host);
    if (first.state !== 'ready') throw new Error(first.message);
    expect(first.written).toBe(true);
    const name = volumeNameOf(vm, CLOUD_INIT_SEED);
    expect(first.backing).toEqual({ path: join(storage.path, name), format: 'raw' });

    const volume = (await host.volume(storage.pool, name))!;
    const listing = readIso9660(await host.downloadVolume(storage.pool, name, volume.capacityBytes));
    expect(listing.jolietVolumeId).toBe('cidata');
    expect(listing.joliet.get('user-data')!.toString()).toBe(userData);
    expect(listing.joliet.get('network-config')!.toString()).toBe(networkConfig);
    expect(listing.joliet.get('meta-data')!.toString()).toBe(
      `instance-id: ${vm.metadata.uid}\nlocal-hostname: web-1\n`,
    );

    expect(await seeds.ensure(vm, storage, host)).toMatchObject({ state: 'ready', written: false });
    // A fresh process knows nothing: it compares the bytes on the host.
    expect(await new CloudInitSeeds(noSecrets).ensure(vm, storage, host)).toMatchObject({
      state: 'ready',
      written: false,
    });

    const changed = vmWith({ userData: '#cloud-config\nhostname: web-one\n' }, vm.metadata.uid);
    expect(await seeds.ensure(changed, storage, host)).toMatchObject({ state: 'ready', written: true });
    const after = (await host.volume(storage.pool, name))!;
    const again = readIso9660(await host.downloadVolume(storage.pool, name, after.capacityBytes));
    expect(again.joliet.get('user-data')!.toString()).toBe('#cloud-config\nhostname: web-one\n');
    expect(again.joliet.has('network-config')).toBe(false);

    expect(await seeds.remove(vm, storage, host)).toBe(true);
    expect(await host.volume(storage.pool, name)).toBeUndefined();
  });

  it('goes into a domain libvirt accepts, as a read-only CD-ROM with bus sata', async () => {
    const vm = vmWith({ userData });
    const seeded = await new CloudInitSeeds(noSecrets).ensure(vm, storage, host);
    if (seeded.state !== 'ready') throw new Error(seeded.message);
    const { uuid, xml } = buildDomainXml({
      uid: vm.metadata.uid!,
      namespace: 'lab',
      name: 'web-1',
      spec: {
        cpu: { cores: 1, sockets: 1, threads: 1 },
        memory: '128Mi',
        firmware: { type: 'bios', secureBoot: false },
      } as never,
      target: { hypervisor: 'kvm', kvmUsable: false },
      disks: {},
      seed: { ...seeded.backing, bus: 'sata' },
    });
    await host.ensureDefined(xml);
    try {
      const devices = child(parseXml(await host.xml(uuid)), 'devices')!;
      const cdrom = childrenNamed(devices, 'disk').find((d) => d.attrs.device === 'cdrom');
      expect(child(cdrom!, 'source')?.attrs.file).toBe(seeded.backing.path);
      expect(child(cdrom!, 'readonly')).toBeDefined();
      expect(child(cdrom!, 'target')?.attrs.bus).toBe('sata');
    } finally {
      await host.undefine(uuid);
      await new CloudInitSeeds(noSecrets).remove(vm, storage, host);
    }
  });
});
