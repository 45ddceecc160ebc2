// What the install tests share: an install tree on 127.0.0.1 (the installer's kernel and
// initrd, with ETags), a pool of one simulated host whose storage pool holds those two files as
// the controller's cache volumes (put there by hand: the test driver takes no uploads), a Secret
// with a plaintext root password, an InstallProfile "rocky", and ways to read the domain's boot.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { INSTALL_PROFILE } from '../../../src/controllers/installprofile.js';
import { installerVolumeName, validatorOf } from '../../../src/controllers/install/media.js';
import type { VmObject } from '../../../src/controllers/resources.js';
import { child, parseXml } from '../../../src/hypervisors/xml.js';
import type { ControllerBench, HostDecl } from './fixtures.js';

export const INSTALL_HOST: HostDecl = { name: 'inst-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
export const STORAGE_POOL = 'vf-install';
export const ROOT_PASSWORD = 'Install "root" pa$$word #7';
const ADMIN_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';
const KERNEL = Buffer.alloc(4096, 0x4b);
const INITRD = Buffer.alloc(8192, 0x49);

export interface OsBoot {
  kernel: string | undefined;
  initrd: string | undefined;
  cmdline: string | undefined;
  bootDev: string | undefined;
}

export class InstallBench {
  bench!: ControllerBench;
  pool = '';
  treeUrl = '';
  kernelPath = '';
  initrdPath = '';
  private tree: Server | undefined;

  async start(bench: ControllerBench): Promise<void> {
    this.bench = bench;
    this.tree = createServer((request, response) => {
      const files: Record<string, [Buffer, string]> = {
        '/tree/images/pxeboot/vmlinuz': [KERNEL, '"kernel-1"'],
        '/tree/images/pxeboot/initrd.img': [INITRD, '"initrd-1"'],
        '/other/vmlinuz': [KERNEL, '"kernel-2"'],
        '/other/initrd.img': [INITRD, '"initrd-2"'],
      };
      const file = files[request.url ?? ''];
      if (!file) return void response.writeHead(404).end();
      response.writeHead(200, { 'content-length': file[0].length, etag: file[1] }).end(file[0]);
    });
    await new Promise<void>((resolve) => this.tree!.listen(0, '127.0.0.1', resolve));
    this.treeUrl = `http://127.0.0.1:${(this.tree.address() as AddressInfo).port}/tree`;

    await bench.start();
    const storagePath = `${bench.hosts.dir}/volumes`;
    this.pool = await bench.createPool('install', [INSTALL_HOST], {
      storage: { pool: STORAGE_POOL, path: storagePath },
    });
    await bench.untilPool(this.pool, (p) => p.status?.readyHosts === 1, 'host ready');

    // What an administrator of an air-gapped host would do, and what the controller does itself
    // on a host that takes uploads: the installer's files as volumes of the pool.
    const host = bench.hypervisor(INSTALL_HOST);
    await host.ensureStoragePool({ name: STORAGE_POOL, path: storagePath });
    const volume = (file: string, etag: string, kind: 'vmlinuz' | 'initrd.img', size: number) =>
      host.createVolume(STORAGE_POOL, {
        name: installerVolumeName(`${this.treeUrl}/images/pxeboot/${file}`, validatorOf(new Headers({ etag })), kind),
        format: 'raw',
        capacityBytes: size,
      });
    this.kernelPath = (await volume('vmlinuz', '"kernel-1"', 'vmlinuz', KERNEL.length)).path;
    this.initrdPath = (await volume('initrd.img', '"initrd-1"', 'initrd.img', INITRD.length)).path;

    await bench.kube.create(SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'rocky-passwords', namespace: bench.namespace },
      type: 'Opaque',
      stringData: { 'root-password': ROOT_PASSWORD, 'admin-hash': ADMIN_HASH },
    } as never);
    await this.createProfile('rocky', {});
  }

  async close(): Promise<void> {
    await this.bench.close();
    await new Promise<void>((resolve) => (this.tree ? this.tree.close(() => resolve()) : resolve()));
  }

  async createProfile(name: string, extra: Record<string, unknown>): Promise<void> {
    await this.bench.kube.create(INSTALL_PROFILE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'InstallProfile',
      metadata: { name, namespace: this.bench.namespace },
      spec: {
        os: { family: 'rhel', name: 'Rocky', version: '9.4' },
        installTree: this.treeUrl,
        rootPassword: { secretKeyRef: { name: 'rocky-passwords', key: 'root-password' } },
        users: [
          { name: 'admin', groups: ['wheel'], passwordSecretRef: { name: 'rocky-passwords', key: 'admin-hash' } },
        ],
        packages: ['@^minimal-environment', 'qemu-guest-agent'],
        boot: { method: 'kernel' },
        ...extra,
      },
    } as never);
  }

  /** A VM that installs `profile` onto a blank disk. */
  createVm(name: string, profile = 'rocky'): Promise<VmObject> {
    return this.bench.createVm(name, this.pool, {
      kernelBoot: undefined,
      install: { profileRef: { name: profile } },
      disks: [{ name: 'root', size: '2Gi', source: { blank: {} } }],
    });
  }

  /** The boot part of the domain's persistent definition. */
  async osBoot(uid: string): Promise<OsBoot> {
    const os = child(parseXml(await this.bench.hypervisor(INSTALL_HOST).xml(uid, { inactive: true })), 'os');
    return {
      kernel: os && child(os, 'kernel')?.text,
      initrd: os && child(os, 'initrd')?.text,
      cmdline: os && child(os, 'cmdline')?.text,
      bootDev: os && child(os, 'boot')?.attrs.dev,
    };
  }

  async url(name: string): Promise<string> {
    return kickstartUrl((await this.osBoot(this.bench.vm(name)?.metadata.uid ?? '')).cmdline);
  }
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export function kickstartUrl(cmdline: string | undefined): string {
  const url = cmdline
    ?.split(' ')
    .find((word) => word.startsWith('inst.ks='))
    ?.slice('inst.ks='.length);
  if (!url) throw new Error(`no inst.ks in ${cmdline}`);
  return url;
}

/** GET `url`; status 0 when nothing answers. */
export async function fetchText(url: string): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

/** Polls `probe` until it returns a value (for what no watch tells: Events, the endpoint's answers). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
