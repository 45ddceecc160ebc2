// VirtualMachineImages on real libvirtd hosts (test/rig), with the controllers and a real API
// server: a qcow2 image made by qemu-img is served by an HTTP server on 127.0.0.1 that the test
// starts, downloaded once, checked against its sha256 and uploaded into the storage pool of both
// rig hosts; the tiny guest boots with a disk that is a linked clone of it (libvirt reads the
// overlay's backing file from its qcow2 header: the image's volume) and another with a full
// copy; the image's deletion waits for both VMs, then its volumes go. Then the same file is
// uploaded with `virtfleet image upload` through the aggregated `virtfleet api` to both hosts,
// and the guest boots from a linked clone of the uploaded image. Last, an ISO the test builds
// (isolinux + the tiny guest's kernel and initramfs, xorriso) is uploaded the same way and boots a
// VM whose only disk is blank: its serial console shows isolinux, then the guest. And a VM with
// spec.cloudInit: the tiny guest finds the NoCloud seed by its label cidata (a read-only virtio
// disk after its root disk), mounts it and prints the sha256 of user-data on its serial console,
// which is the sha256 of the spec's user data. Needs root and the rig.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VIRTUAL_MACHINE_IMAGE, imageVolumeName, type ImageObject } from '../../src/controllers/image/resource.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Informer } from '../../src/runtime/informer.js';
import { mkdirSync, copyFileSync, writeFileSync } from 'node:fs';
import { runUpload } from '../../src/cli/image.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { child, childrenNamed, parseXml } from '../../src/hypervisors/xml.js';
import { READY_MARKER } from '../rig/guest.js';
import { ApiServerProcess } from '../harness/api-server.js';
import { guestImage } from '../rig/guest.js';
import { condition, guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const run = promisify(execFile);
const MiB = 2 ** 20;
const STORAGE = { pool: 'vf-images', path: '/var/lib/libvirt/images/vf-images' };
const stack = new RigController({ hosts: 2, tag: 'images' });
const connections = new LibvirtConnectionPool();
let server: Server;
let url: string;
let sha256: string;
let images: Informer<ImageObject>;
const stopImages = new AbortController();
let imagesRun: Promise<void>;
let api: ApiServerProcess;
let imageFile: string;

beforeAll(async () => {
  await stack.start();
  const file = join(stack.dir, 'disk.qcow2');
  imageFile = file;
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
  const bytes = readFileSync(file);
  sha256 = createHash('sha256').update(bytes).digest('hex');
  server = createServer((request, response) => {
    if (request.url !== '/disk.qcow2') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.qcow2`;
  const cache = new Cache(stack.client, stack.logs.logger);
  images = cache.informerFor<ImageObject>(VIRTUAL_MACHINE_IMAGE, { namespace: NAMESPACE });
  images.on(() => stack.poke());
  imagesRun = cache.run(stopImages.signal);
  await cache.waitForSync();
  await stack.client.create(HOST_POOL, hostPool('rig', { hosts: stack.poolHosts(), storage: STORAGE }));
  api = new ApiServerProcess(stack.info.kubeconfig, stack.info.pki, join(stack.dir, 'api.log'), [
    '--upload-dir',
    stack.dir,
  ]);
  await api.start(stack.client);
}, 240_000);

afterAll(async () => {
  await stack.deleteVms(60_000);
  for (const image of images?.list() ?? [])
    await stack.client.delete(VIRTUAL_MACHINE_IMAGE, NAMESPACE, image.metadata.name ?? '').catch(() => undefined);
  await api?.stop();
  stopImages.abort();
  await imagesRun;
  await connections.closeAll();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await stack.stop();
}, 180_000);

const image = (name: string) => images.get(`${NAMESPACE}/${name}`);
const host = (name: string) => new LibvirtHypervisor(connections, stack.rigHost(name).uri);

describe('images on real libvirtd hosts', () => {
  it('downloads a URL image once, verifies its sha256 and uploads it to both hosts', async () => {
    await stack.client.create(VIRTUAL_MACHINE_IMAGE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineImage',
      metadata: { name: 'tiny-disk', namespace: NAMESPACE },
      spec: { hostPoolRef: { name: 'rig' }, source: { url, sha256 } },
    } as never);
    await stack.until(
      () => image('tiny-disk')?.status?.phase === 'Ready',
      120_000,
      () => `image Ready (last status: ${JSON.stringify(image('tiny-disk')?.status)})`,
    );
    const ready = image('tiny-disk')!;
    expect(ready.status).toMatchObject({ format: 'qcow2', sizeBytes: 64 * MiB, sha256, checksumVerified: true });
    expect(ready.status?.hosts?.map((h) => [h.name, h.phase])).toEqual([
      ['rig-0', 'Ready'],
      ['rig-1', 'Ready'],
    ]);
    const volume = imageVolumeName(NAMESPACE, 'tiny-disk');
    for (const name of ['rig-0', 'rig-1'])
      expect(await host(name).volume(STORAGE.pool, volume)).toMatchObject({ format: 'qcow2', capacityBytes: 64 * MiB });
  }, 180_000);

  it('boots the guest with a linked clone of the image, and another with a full copy', async () => {
    const guest = await guestImage();
    for (const [name, copy] of [
      ['linked', false],
      ['copied', true],
    ] as const) {
      const disk = { name: 'root', size: '128Mi', source: { image: { name: 'tiny-disk', ...(copy ? { copy } : {}) } } };
      await stack.client.create(VIRTUAL_MACHINE, guestVm(name, 'rig', guest, { disks: [disk] }) as never);
    }
    await stack.until(
      () => isRunning(stack.vm('linked')) && isRunning(stack.vm('copied')),
      180_000,
      () =>
        `both Running (linked: ${JSON.stringify(stack.vm('linked')?.status)}, copied: ${JSON.stringify(stack.vm('copied')?.status)})`,
    );
    const linkedHost = stack.vm('linked')!.status!.host!;
    const copiedHost = stack.vm('copied')!.status!.host!;
    const imagePath = image('tiny-disk')!.status!.hosts!.find((h) => h.name === linkedHost)!.path;
    // libvirt reads the backing file from the overlay's own qcow2 header on the host.
    const overlay = await host(linkedHost).volume(STORAGE.pool, `vf-${NAMESPACE}_linked_root`);
    expect(overlay).toMatchObject({ format: 'qcow2', capacityBytes: 128 * MiB, backingPath: imagePath });
    expect(overlay!.allocationBytes).toBeLessThan(64 * MiB);
    const copy = await host(copiedHost).volume(STORAGE.pool, `vf-${NAMESPACE}_copied_root`);
    expect(copy).toMatchObject({ format: 'qcow2', capacityBytes: 128 * MiB });
    expect(copy?.backingPath).toBeUndefined();
  }, 300_000);

  it('keeps the image while the VMs use it, and deletes its volumes once they are gone', async () => {
    await stack.client.delete(VIRTUAL_MACHINE_IMAGE, NAMESPACE, 'tiny-disk');
    await stack.until(() => image('tiny-disk')?.status?.phase === 'Deleting', 30_000, 'image Deleting');
    expect(condition(image('tiny-disk') as never, 'Ready')?.reason).toBe('InUse');
    await stack.deleteVms(120_000);
    await stack.until(() => image('tiny-disk') === undefined, 60_000, 'image gone');
    const volume = imageVolumeName(NAMESPACE, 'tiny-disk');
    for (const name of ['rig-0', 'rig-1']) expect(await host(name).volume(STORAGE.pool, volume)).toBeUndefined();
  }, 240_000);

  it('takes an upload through the API server to both hosts, and boots the guest from a linked clone of it', async () => {
    await stack.client.create(VIRTUAL_MACHINE_IMAGE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineImage',
      metadata: { name: 'uploaded', namespace: NAMESPACE },
      spec: { hostPoolRef: { name: 'rig' }, source: { upload: {} } },
    } as never);
    const lines: string[] = [];
    await runUpload(
      'uploaded',
      { file: imageFile, namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '120' },
      (line) => lines.push(line),
      { tty: false, write: (text) => lines.push(text) },
    );
    expect(lines.join('\n')).toMatch(/uploading uploaded: 100%/);
    expect(lines.join('\n')).toMatch(/image uploaded: on hosts rig-0, rig-1/);
    await stack.until(
      () => image('uploaded')?.status?.phase === 'Ready',
      60_000,
      () => `uploaded Ready (last status: ${JSON.stringify(image('uploaded')?.status)})`,
    );
    expect(image('uploaded')!.status).toMatchObject({
      format: 'qcow2',
      sizeBytes: 64 * MiB,
      sha256,
      checksumVerified: true,
    });
    const volume = imageVolumeName(NAMESPACE, 'uploaded');
    for (const name of ['rig-0', 'rig-1'])
      expect(await host(name).volume(STORAGE.pool, volume)).toMatchObject({ format: 'qcow2', capacityBytes: 64 * MiB });

    const guest = await guestImage();
    const disk = { name: 'root', size: '128Mi', source: { image: { name: 'uploaded' } } };
    await stack.client.create(VIRTUAL_MACHINE, guestVm('from-upload', 'rig', guest, { disks: [disk] }) as never);
    await stack.until(
      () => isRunning(stack.vm('from-upload')),
      180_000,
      () => `from-upload Running (${JSON.stringify(stack.vm('from-upload')?.status)})`,
    );
    const at = stack.vm('from-upload')!.status!.host!;
    const overlay = await host(at).volume(STORAGE.pool, `vf-${NAMESPACE}_from-upload_root`);
    expect(overlay?.backingPath).toBe(image('uploaded')!.status!.hosts!.find((h) => h.name === at)!.path);
  }, 300_000);

  it('boots a VM whose disk is blank from an ISO image on its CD-ROM, as its serial console shows', async () => {
    const guest = await guestImage();
    // A bootable ISO: isolinux (Debian's isolinux and syslinux-common), the guest's kernel and initramfs.
    const tree = join(stack.dir, 'iso-tree');
    mkdirSync(join(tree, 'isolinux'), { recursive: true });
    copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(tree, 'isolinux/isolinux.bin'));
    copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(tree, 'isolinux/ldlinux.c32'));
    copyFileSync(guest.kernel, join(tree, 'vmlinuz'));
    copyFileSync(guest.initrd, join(tree, 'initrd'));
    writeFileSync(
      join(tree, 'isolinux/isolinux.cfg'),
      'SERIAL 0 115200\nDEFAULT vf\nLABEL vf\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd console=ttyS0 quiet panic=-1\n',
    );
    const iso = join(stack.dir, 'installer.iso');
    // prettier-ignore
    await run('xorriso', ['-as', 'mkisofs', '-quiet', '-o', iso, '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
      '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', tree]);
    await stack.client.create(VIRTUAL_MACHINE_IMAGE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachineImage',
      metadata: { name: 'installer', namespace: NAMESPACE },
      spec: { hostPoolRef: { name: 'rig' }, source: { upload: {} } },
    } as never);
    await runUpload(
      'installer',
      { file: iso, namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '120' },
      () => undefined,
      { tty: false, write: () => undefined },
    );
    await stack.until(() => image('installer')?.status?.phase === 'Ready', 60_000, 'installer Ready');
    expect(image('installer')!.status?.format).toBe('iso');

    const vm = guestVm('from-cd', 'rig', guest, {
      disks: [
        { name: 'root', size: '64Mi', bootOrder: 2, source: { blank: {} } },
        { name: 'install', type: 'cdrom', bootOrder: 1, source: { image: { name: 'installer' } } },
      ],
    });
    delete vm.spec.kernelBoot; // the firmware boots what the CD-ROM holds
    await stack.client.create(VIRTUAL_MACHINE, vm as never);
    await stack.until(
      () => isRunning(stack.vm('from-cd')),
      180_000,
      () => JSON.stringify(stack.vm('from-cd')?.status),
    );
    const running = stack.vm('from-cd')!;
    const conn = await LibvirtConnection.open(stack.rigHost(running.status!.host!).uri);
    try {
      const uuid = running.status!.domainUUID ?? running.metadata.uid ?? '';
      const output = await consoleUntil(conn, uuid, READY_MARKER, 120_000);
      // isolinux's banner (it runs only from the CD-ROM: the disk is blank, there is no kernelBoot), then the guest.
      expect(output).toMatch(/ISOLINUX \d+\.\d+[^]*VIRTFLEET-GUEST-READY/);
    } finally {
      await conn.close();
    }
  }, 300_000);

  it('gives the guest its cloud-init user data: the guest prints its sha256 from the cidata volume', async () => {
    const guest = await guestImage();
    // Several lines, quotes and a non-ASCII character: the guest hashes the bytes as written.
    const userData = `#cloud-config\nhostname: seeded\nruncmd:\n  - [sh, -c, "echo 'grüße' > /tmp/x"]\n`;
    const vm = guestVm('seeded', 'rig', guest, {
      disks: [{ name: 'root', size: '64Mi', source: { blank: {} } }],
      cloudInit: { userData },
    });
    // vf.cidata: the guest's init runs vf-cidata (test/rig/build-guest.sh).
    vm.spec.kernelBoot = { kernel: guest.kernel, initrd: guest.initrd, cmdline: 'console=ttyS0 panic=-1 vf.cidata' };
    await stack.client.create(VIRTUAL_MACHINE, vm as never);
    await stack.until(
      () => isRunning(stack.vm('seeded')),
      180_000,
      () => JSON.stringify(stack.vm('seeded')?.status),
    );
    const running = stack.vm('seeded')!;
    const uuid = running.status!.domainUUID ?? running.metadata.uid ?? '';
    // The seed is a read-only virtio disk after the root disk (the default spec.cloudInit.bus).
    expect(running.spec.cloudInit?.bus).toBe('virtio');
    const devices = child(parseXml(await host(running.status!.host!).xml(uuid)), 'devices')!;
    const seed = childrenNamed(devices, 'disk').find((d) =>
      (child(d, 'source')?.attrs.file ?? '').endsWith('_cloud-init.iso'),
    );
    expect(seed?.attrs.device).toBe('disk');
    expect(child(seed!, 'target')?.attrs).toMatchObject({ dev: 'vdb', bus: 'virtio' });
    expect(child(seed!, 'readonly')).toBeDefined();

    const conn = await LibvirtConnection.open(stack.rigHost(running.status!.host!).uri);
    try {
      const output = await consoleUntil(conn, uuid, /VIRTFLEET-CIDATA .*\r?\n/, 120_000);
      const line = /VIRTFLEET-CIDATA (.*?)\r?\n/.exec(output)![1];
      const expected = createHash('sha256').update(running.spec.cloudInit!.userData!, 'utf8').digest('hex');
      // Found by its label, not its place: the root disk is vda.
      expect(line).toBe(`user-data sha256=${expected} device=/dev/vdb`);
    } finally {
      await conn.close();
    }
  }, 300_000);
});

/** The serial console's output from now until it matches `pattern`. */
async function consoleUntil(
  conn: LibvirtConnection,
  uuid: string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  const console = await conn.domainOpenConsole(uuid, { force: true });
  let output = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; console said:\n${output.slice(-2000)}`)),
        timeoutMs,
      );
      console.onData((data) => {
        output += data.toString('latin1');
        if (pattern.test(output)) {
          clearTimeout(timer);
          resolve(output);
        }
      });
    });
  } finally {
    await console.close();
  }
}
