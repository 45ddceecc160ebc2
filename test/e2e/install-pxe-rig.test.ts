// Issue 7, Done 2 and 3, on a real libvirtd host (test/rig) with a real QEMU guest: a VM with an
// InstallProfile (boot method pxe) PXE-boots through the host's libvirt network `vf-install`,
// which the controller defines: QEMU's iPXE ROM takes an address from libvirt's dnsmasq, fetches
// the boot file by TFTP from the controller's pool `vf-pxe`, chains to the script of its MAC and
// loads the installer's kernel and initrd (downloaded by the controller from an install tree on
// 127.0.0.1 and uploaded to the host). The installer (test/rig/build-installer.sh) fetches its
// Kickstart from the controller's install endpoint through the host's NAT, prints its sha256,
// writes "the OS" and a marker to the disk and powers off; the controller boots the VM from its
// disk, where the OS prints the marker. Then: Running, Installed=True, the Kickstart URL 404 (and
// for a wrong token), the per-MAC script gone, and the root password (plaintext in its Secret)
// in no log line, Event, status, served file or script. The controller is restarted in the
// middle of the install: the new one takes it up from the host.
//
// Traffic: loopback (the install tree, the API server), the rig's veth (libvirt, the install
// endpoint on the test side of the veth) and the host's own install network inside its
// namespace. Prints the install's figures.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { libvirtHypervisors } from '../../src/cli/libvirt-hypervisors.js';
import { Fleet } from '../../src/hosts/fleet.js';
import { SECRET } from '../../src/controllers/host-credentials.js';
import { INSTALL_PROFILE, type ProfileObject } from '../../src/controllers/installprofile.js';
import { HOST_POOL, VIRTUAL_MACHINE, type VmObject } from '../../src/controllers/resources.js';
import { addControllers } from '../../src/controllers/setup.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { LibvirtConnection, type LibvirtConsole } from '../../src/hypervisors/libvirt/native/index.js';
import { PXE_DEFAULTS, macScriptName } from '../../src/provisioning/pxe.js';
import type { Condition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { Manager } from '../../src/runtime/manager.js';
import { captureLogs } from '../harness/logs.js';
import { Rig, type RigHost } from '../rig/rig.js';

const run = promisify(execFile);
const NAMESPACE = 'default';
const ROOT_PASSWORD = 'PXE "root" pa$$word #9';
const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-pxe-e2e-'));
const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
const logs = captureLogs('debug');
let info: ControlPlaneInfo;
let rig: Rig;
let host: RigHost;
let fleet: Fleet;
let client: KubeClient;
let running: Promise<void> | undefined;
let stop = new AbortController();
let endpoint = '';
let tree: Server | undefined;
let installer: { dir: string; kernel: string; initrd: string };

/** The installer's kernel, initramfs and disk image: built on first use, cached (build-installer.sh). */
async function installerImage(): Promise<{ dir: string; kernel: string; initrd: string }> {
  const { stdout } = await run(join(repoRoot(), 'test/rig/build-installer.sh'), [], { maxBuffer: 1 << 20 });
  const dir = stdout.trim().split('\n').pop() ?? '';
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'installer.gz');
  if (!existsSync(kernel) || !existsSync(initrd))
    throw new Error(`build-installer.sh gave no installer in ${JSON.stringify(dir)}`);
  return { dir, kernel, initrd };
}

beforeAll(async () => {
  installer = await installerImage();
  info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  // No KVM for the hosts: iPXE's option ROM fails under this machine's KVM (see RigOptions.hideKvm).
  rig = await Rig.start({ hosts: 1, diskLeases: false, hideKvm: true });
  host = rig.hosts[0]!;
  // The install tree, on loopback: the controller downloads the installer from here and uploads
  // it to the host's PXE pool.
  tree = createServer((request, response) => {
    const files: Record<string, string> = {
      '/tree/images/pxeboot/vmlinuz': installer.kernel,
      '/tree/images/pxeboot/initrd.img': installer.initrd,
    };
    const file = files[request.url ?? ''];
    if (!file) return void response.writeHead(404).end();
    const body = readFileSync(file);
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => tree!.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfig);
  client = new KubeClient(kubeConfig);
  // The endpoint listens on the test's end of the host's veth: the guest reaches it through its
  // host's NAT, as a real guest reaches a controller through its host's routing. A fixed port:
  // the URL in the VM's script must still answer after a controller restart.
  endpoint = `${host.address.replace(/\.2$/, '.1')}:${await freePort(host.address.replace(/\.2$/, '.1'))}`;
  startController();
}, 300_000);

afterAll(async () => {
  await stopController();
  await rig?.teardown();
  await plane.stop();
  await new Promise<void>((resolve) => (tree ? tree.close(() => resolve()) : resolve()));
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

function startController(): void {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfig);
  const manager = new Manager({ kubeConfig, logger: logs.logger });
  fleet = new Fleet(libvirtHypervisors());
  stop = new AbortController();
  addControllers(manager, {
    fleet,
    logger: logs.logger,
    shutdownGraceMs: 3_000,
    installEndpoint: { address: endpoint },
  });
  running = manager.run(stop.signal);
}

async function stopController(): Promise<void> {
  stop.abort();
  await running;
  await fleet?.close();
}

async function freePort(address: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, address, resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Everything the VM's serial console says, across its boots: a console is opened at every start. */
class ConsoleRecorder {
  text = '';
  private readonly consoles: LibvirtConsole[] = [];
  private waiters = new Set<() => void>();
  private stopEvents: (() => void) | undefined;

  constructor(
    private readonly conn: LibvirtConnection,
    private readonly uuid: string,
  ) {}

  start(): void {
    this.stopEvents = this.conn.onDomainEvent((event) => {
      if (event.type !== 'lifecycle' || event.domain.uuid !== this.uuid || event.event !== 'started') return;
      void this.conn.domainOpenConsole(this.uuid, { force: true }).then(
        (console) => {
          this.consoles.push(console);
          console.onData((data) => {
            this.text += data.toString('latin1');
            for (const wake of this.waiters) wake();
          });
        },
        (error: unknown) => {
          this.text += `\n[console could not be opened: ${String(error)}]\n`;
        },
      );
    });
  }

  async waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `${what}: ${pattern} not on the console within ${timeoutMs} ms; it ends with:\n${this.text.slice(-3000)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 1_000));
        const waiters = this.waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        this.waiters.add(done);
      });
    }
  }

  async close(): Promise<void> {
    this.stopEvents?.();
    await Promise.all(this.consoles.map((c) => c.close().catch(() => undefined)));
  }
}

async function vmNow(): Promise<VmObject> {
  return (await client.get(VIRTUAL_MACHINE, NAMESPACE, 'pxe-1')) as VmObject;
}

function condition(vm: VmObject | ProfileObject, type: string): Condition | undefined {
  return (vm.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      // What the VM said last, so a timeout names the reason it waited.
      const status = await vmNow().then(
        (vm) => JSON.stringify(vm.status),
        () => '(unreadable)',
      );
      throw new Error(
        `timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}; VM status: ${status}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function fetchText(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe('PXE install on a real libvirtd host', () => {
  it('PXE-boots the installer, which fetches its Kickstart and installs; then the VM boots from its disk, Installed', async () => {
    const treeUrl = `http://127.0.0.1:${(tree!.address() as AddressInfo).port}/tree`;
    await client.create(SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'pxe-passwords', namespace: NAMESPACE },
      type: 'Opaque',
      stringData: { 'root-password': ROOT_PASSWORD },
    } as never);
    await client.create(INSTALL_PROFILE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'InstallProfile',
      metadata: { name: 'tiny-os', namespace: NAMESPACE },
      spec: {
        os: { family: 'rhel', name: 'Rocky', version: '9.4' },
        installTree: treeUrl,
        rootPassword: { secretKeyRef: { name: 'pxe-passwords', key: 'root-password' } },
        packages: ['@core'],
        // boot.method is left to its default: pxe.
        boot: { extraArgs: 'quiet' },
        timeoutMinutes: 10,
      },
    } as never);
    await client.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: 'rig' },
      spec: {
        hosts: [{ name: 'rig-0', uri: host.uri }],
        storage: { pool: 'vf-disks', path: '/var/lib/libvirt/images/vf-disks' },
      },
    } as never);
    const created = (await client.create(VIRTUAL_MACHINE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'pxe-1', namespace: NAMESPACE },
      spec: {
        hostPoolRef: { name: 'rig' },
        hypervisor: 'kvm',
        memory: '256Mi',
        disks: [{ name: 'root', size: '64Mi', source: { blank: {} } }],
        install: { profileRef: { name: 'tiny-os' } },
      },
    } as never)) as VmObject;
    const uid = created.metadata.uid ?? '';

    const conn = await LibvirtConnection.open(host.uri);
    const recorder = new ConsoleRecorder(conn, uid);
    recorder.start();
    try {
      // Installing: the domain boots from the network, its one NIC on vf-install.
      const installing = await until(
        async () => {
          const vm = await vmNow();
          return vm.status?.phase === 'Installing' ? vm : undefined;
        },
        180_000,
        'phase Installing',
      );
      const startedAt = Date.parse(condition(installing, 'Installed')?.lastTransitionTime ?? '');
      expect(condition(installing, 'Installed')?.message).toContain('boots by PXE (network vf-install)');
      const domainXml = await conn.domainGetXMLDesc(uid, { inactive: true });
      expect(domainXml).toMatch(/<boot dev=['"]network['"]\/>/);
      expect(domainXml).toMatch(/<source network=['"]vf-install['"]/);
      expect(domainXml).not.toContain('<kernel>');

      // The VM's script on the host: kernel, initrd and the command line with its Kickstart URL.
      const mac = /<mac address=['"]([0-9a-f:]+)['"]/.exec(domainXml)?.[1] ?? '';
      const scriptFile = host.privatePath(`${PXE_DEFAULTS.poolPath}/${macScriptName(mac)}`);
      const script = readFileSync(scriptFile, 'utf8');
      expect(script).toMatch(
        /^#!ipxe\nkernel vf-installer-[0-9a-f]{20}-vmlinuz inst\.ks=http:\/\/\S+ inst\.repo=\S+ inst\.text console=ttyS0 quiet\ninitrd vf-installer-[0-9a-f]{20}-initrd\.img\nboot\n$/,
      );
      const url = /inst\.ks=(\S+)/.exec(script)?.[1] ?? '';
      expect(url).toMatch(
        new RegExp(
          `^http://${host.address.replace(/\.2$/, '.1').replaceAll('.', '\\.')}:\\d+/ks/${uid}/[A-Za-z0-9_-]{43}$`,
        ),
      );

      // The installer fetched its Kickstart and printed its hash: the profile's renderedHash.
      const printed = (
        await recorder.waitFor(/VIRTFLEET-INSTALLER-KS sha256=([0-9a-f]{64}) bytes=(\d+)/, 300_000, 'the installer')
      )[1]!;
      const profile = (await client.get(INSTALL_PROFILE, NAMESPACE, 'tiny-os')) as ProfileObject;
      expect(`sha256:${printed}`).toBe(profile.status?.renderedHash);
      // The endpoint serves the same bytes while the install runs (the test fetches it once too).
      const served = await fetchText(url);
      expect(served.status).toBe(200);
      expect(createHash('sha256').update(served.body).digest('hex')).toBe(printed);
      // A controller restart now, whether the installer powers off before the new one runs or
      // after: the new one takes the install up from the host (the token from the VM's script).
      await stopController();
      startController();
      await recorder.waitFor(/VIRTFLEET-INSTALLER-DONE/, 120_000, 'the installer writing the disk');

      // The controller boots it from its disk: the marker the installer wrote is read there.
      const installed = await until(
        async () => {
          const vm = await vmNow();
          return vm.status?.phase === 'Running' && condition(vm, 'Installed')?.status === 'True' ? vm : undefined;
        },
        180_000,
        'Running and Installed=True',
      );
      const installedAt = Date.parse(condition(installed, 'Installed')?.lastTransitionTime ?? '');
      const marker = await recorder.waitFor(
        /VIRTFLEET-BOOTED-FROM-DISK VIRTFLEET-DISK-MARKER ks-sha256=([0-9a-f]{64})/,
        120_000,
        'the installed OS',
      );
      expect(marker[1]).toBe(printed);
      await recorder.waitFor(/VIRTFLEET-GUEST-READY uptime=/, 60_000, 'the installed OS ready');
      expect(condition(installed, 'Installed')).toMatchObject({ status: 'True', reason: 'Installed' });
      const diskXml = await conn.domainGetXMLDesc(uid, { inactive: true });
      expect(diskXml).toMatch(/<boot dev=['"]hd['"]\/>/);
      expect(diskXml).not.toContain('vf-install');

      // The token is revoked and its script gone.
      expect(await fetchText(url)).toEqual({ status: 404, body: 'not found\n' });
      const token = url.split('/').at(-1)!;
      expect(await fetchText(url.replace(token, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`))).toEqual({
        status: 404,
        body: 'not found\n',
      });
      await until(async () => (existsSync(scriptFile) ? undefined : true), 30_000, 'the per-MAC script deleted');
      expect(
        logs
          .lines()
          .some(
            (line) =>
              line.msg === 'install under way taken up from the domain definition' && line.vm === `${NAMESPACE}/pxe-1`,
          ),
      ).toBe(true);
      console.log(
        `PXE install on the rig: InstallStarted → Installed ${((installedAt - startedAt) / 1000).toFixed(0)} s (second-resolution timestamps); ` +
          `Kickstart ${served.body.length} bytes, sha256 ${printed.slice(0, 16)}…`,
      );

      // Secrets: the plaintext root password in no log line, Event, status, served file or script.
      const events = await client.list(
        { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
        { namespace: NAMESPACE },
      );
      const haystacks = {
        logs: JSON.stringify(logs.lines()),
        events: JSON.stringify(events.items),
        status: JSON.stringify([(await vmNow()).status, profile.status]),
        served: served.body,
        script,
        console: recorder.text,
      };
      expect(haystacks.events).toContain('KickstartServed');
      expect(served.body).toMatch(/^rootpw --iscrypted \$6\$/m);
      for (const secret of [
        ROOT_PASSWORD,
        Buffer.from(ROOT_PASSWORD).toString('base64'),
        JSON.stringify(ROOT_PASSWORD).slice(1, -1),
      ]) {
        for (const [where, text] of Object.entries(haystacks))
          expect({ where, found: text.includes(secret) }).toEqual({ where, found: false });
      }
    } finally {
      await recorder.close();
      await conn.close();
    }
  }, 900_000);
});
