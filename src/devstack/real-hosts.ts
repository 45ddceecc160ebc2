// Two real libvirtd hosts for `make run`, started as the e2e rig starts them (rig.ts: each in its
// own network and mount namespaces, tini as reaper, virtlockd, QEMU under TCG), with the rig's tiny
// guest, so that the example VM `demo` (manifests/optional/vm-demo.yaml) really boots. They are
// HostPool `local`, written for this start (the hosts' addresses are reserved per start) into the
// state directory. Each host gets a libvirt network `management` over its own interface: the pool
// names it as where VNC listens (spec.graphics.listen.network), so a migrated VM listens on its
// new host. Where they cannot start, unavailableReason() says why in one line.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { el, serializeXml } from '../hypervisors/xml.js';
import { guestImage } from './guest-image.js';
import { Rig } from './rig.js';

const run = promisify(execFile);

/** Where demo's kernel and initramfs are: a fixed path, so the manifest names it (every host sees it). */
export const LOCAL_GUEST_DIR = '/var/lib/virtfleet/local/guest';
/** The libvirt network on each host that VNC listens on. */
export const MANAGEMENT_NETWORK = 'management';
const HOST_COUNT = 2;

/** What the hosts need on this machine: checked before anything starts. */
const TOOLS = [
  ['/usr/bin/qemu-system-x86_64', 'no QEMU'],
  ['/usr/sbin/libvirtd', 'no libvirtd'],
  ['/usr/sbin/virtlockd', 'no virtlockd'],
  ['/usr/bin/tini', 'no tini'],
  ['/usr/bin/virsh', 'no virsh'],
] as const;

/** Why real hosts cannot start here, in one line; undefined when they can. */
export function unavailableReason(uid = process.getuid?.()): string | undefined {
  if (uid !== 0) return 'not root (real hosts need network namespaces, veths and libvirtd)';
  for (const [path, what] of TOOLS)
    if (!existsSync(path)) return `${what} (${path} is missing; hack/setup.sh installs it)`;
  return undefined;
}

export interface RealHosts {
  hosts: { name: string; uri: string; address: string }[];
  /** HostPool local for these hosts, to apply. */
  poolFile: string;
  stop(): Promise<void>;
}

/** Starts the hosts under `stateDir`/real-hosts (emptied first; left for reading after stop). */
export async function startRealHosts(stateDir: string, out: (line: string) => void): Promise<RealHosts> {
  const image = await guestImage();
  installGuest(image);
  const baseDir = join(stateDir, 'real-hosts');
  rmSync(baseDir, { recursive: true, force: true });
  const rig = await Rig.start({ hosts: HOST_COUNT, baseDir });
  try {
    const hosts = rig.hosts.map((host) => ({ name: `local-${host.index + 1}`, uri: host.uri, address: host.address }));
    for (const host of rig.hosts) await defineManagementNetwork(host.uri, host.interface, join(baseDir, host.name));
    const poolFile = join(baseDir, 'hostpool-local.yaml');
    writeFileSync(poolFile, hostPoolLocal(hosts, rig.sharedDir));
    out(`real hosts of HostPool local: ${hosts.map((h) => `${h.name} (${h.uri})`).join(', ')}; state in ${baseDir}`);
    return { hosts, poolFile, stop: () => rig.teardown({ keepFiles: true }) };
  } catch (error) {
    await rig.teardown({ keepFiles: true });
    throw error;
  }
}

/** Copies the guest to LOCAL_GUEST_DIR, only what changed (through a rename: never half a file). */
function installGuest(image: { kernel: string; initrd: string }): void {
  mkdirSync(LOCAL_GUEST_DIR, { recursive: true, mode: 0o755 });
  for (const [from, name] of [
    [image.kernel, 'vmlinuz'],
    [image.initrd, 'initramfs.gz'],
  ] as const) {
    const to = join(LOCAL_GUEST_DIR, name);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
    const temp = `${to}.${process.pid}.tmp`;
    copyFileSync(from, temp);
    renameSync(temp, to);
  }
}

/** A network in forward mode private over the host's interface: libvirt resolves it to that interface's address. */
export async function defineManagementNetwork(uri: string, device: string, hostDir: string): Promise<void> {
  const file = join(hostDir, `${MANAGEMENT_NETWORK}-network.xml`);
  const xml = el(
    'network',
    {},
    el('name', {}, MANAGEMENT_NETWORK),
    el('forward', { mode: 'private' }, el('interface', { dev: device })),
  );
  writeFileSync(file, serializeXml(xml));
  await run('virsh', ['-c', uri, 'net-define', file]);
  await run('virsh', ['-c', uri, 'net-start', MANAGEMENT_NETWORK]);
}

function hostPoolLocal(hosts: { name: string; uri: string }[], sharedDir: string): string {
  const pool = {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name: 'local' },
    spec: {
      hosts: hosts.map((host) => ({ name: host.name, uri: host.uri, labels: { 'virtfleet.io/real': 'true' } })),
      // Every host sees the rig's shared directory at the same path: shared storage.
      storage: { pool: 'default', path: join(sharedDir, 'images'), shared: true },
      graphics: { listen: { network: MANAGEMENT_NETWORK } },
    },
  };
  return `# Written by make run for this start (the hosts' addresses change between starts).\n${stringify(pool)}`;
}
