// PXE boot of an installer on a host (spec.boot.method pxe): what the install flow (flow.ts) needs
// there, made through the Hypervisor interface only, so that it works on remote hosts — the
// controller can put files on a host only as storage volumes.
//
//   storage pool `vf-pxe`   a directory pool the controller defines (mode 0755, so that
//                            dnsmasq, which drops root, can read it) at /var/lib/libvirt/virtfleet-pxe;
//                            it is the TFTP root. It holds the installer's kernel and initrd
//                            (media.ts downloads them into it, mode 0644), the boot file
//                            vf-pxe-boot.ipxe, and one vf-pxe-<mac>.ipxe per VM installing now.
//   network `vf-install`     NAT, 192.168.213.0/24, DHCP with that boot file, the pool's
//                            directory as TFTP root (src/provisioning/pxe.ts renders it);
//                            defined, autostarted and started by the controller when missing.
//
// While a VM installs, its domain has one NIC, on vf-install, with the MAC of its first
// interface (or of an interface named `install`), and boots from the network; its
// vf-pxe-<mac>.ipxe names the kernel, the initrd and the command line with the Kickstart URL
// and token. The script is deleted when the install ends, as the token is revoked.
import type { VirtualMachineSpec } from '../../api/virtualmachine.js';
import { derivedMac } from '../../hypervisors/domain-xml.js';
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { child, childrenNamed, parseXml } from '../../hypervisors/xml.js';
import {
  BOOT_SCRIPT,
  bootScript,
  cmdlineInScript,
  macScript,
  macScriptName,
  networkXml,
  pxeSettings,
  type MacScript,
  type PxeSettings,
} from '../../provisioning/pxe.js';
import { errorText } from '../error-text.js';

/** Mode of the PXE pool's directory and of its files: dnsmasq's TFTP reads them as another user. */
export const PXE_DIR_MODE = '0755';
export const PXE_FILE_MODE = '0644';
const MAX_SCRIPT_BYTES = 8192;

export type PxeHostResult = { ok: true } | { ok: false; message: string };

/** The domain of an installing VM, by PXE: one NIC on the install network, booting from it. */
export function pxeInstallerSpec(
  vm: { metadata: { uid?: string }; spec: Pick<VirtualMachineSpec, 'networks' | 'disks'> },
  hypervisor: 'kvm' | 'xen',
  network: string,
): { spec: Partial<VirtualMachineSpec>; mac: string } {
  const nics = vm.spec.networks ?? [];
  const nic = nics.find((n) => n.name === 'install') ?? nics[0];
  const name = nic?.name ?? 'install';
  const mac = (nic?.macAddress ?? derivedMac(hypervisor, vm.metadata.uid ?? '', name)).toLowerCase();
  const installNic = { name, network, model: nic?.model ?? 'virtio', macAddress: mac } as NonNullable<
    VirtualMachineSpec['networks']
  >[number];
  return {
    mac,
    spec: {
      networks: [installNic],
      // The network is the boot device: disks keep their bus and image, not their boot order.
      disks: (vm.spec.disks ?? []).map(({ bootOrder: _order, ...disk }) => disk) as VirtualMachineSpec['disks'],
    },
  };
}

/** The hypervisor type a VM is placed on (its status), for a derived MAC: KVM's prefix unless Xen. */
export function placedType(status: { hypervisor?: string } | undefined): 'kvm' | 'xen' {
  return status?.hypervisor === 'xen' ? 'xen' : 'kvm';
}

/** What pxeMacHolder needs to know of a VM (a VmObject from the cache). */
export interface PxeMacCandidate {
  metadata: { uid?: string; namespace?: string; name?: string };
  spec: Pick<VirtualMachineSpec, 'networks' | 'disks'> & { install?: unknown };
  status?: {
    host?: string;
    hypervisor?: string;
    conditions?: Array<{ type: string; status: string; reason?: string }>;
  };
}

/**
 * Another VM that installs by PXE on `host` with `mac`, as the cluster says (its status: that
 * host, Installed=False with reason Installing), or undefined. Scripts are named by MAC, so a
 * second one would overwrite the first's. From status rather than memory, so that a restarted
 * controller sees it before that VM's install is taken up again.
 */
export function pxeMacHolder(
  candidates: Iterable<PxeMacCandidate>,
  self: string,
  host: string,
  mac: string,
  network: string,
): PxeMacCandidate | undefined {
  for (const vm of candidates) {
    if (vm.metadata.uid === self || !vm.spec.install || vm.status?.host !== host) continue;
    const installed = vm.status.conditions?.find((c) => c.type === 'Installed');
    if (installed?.status !== 'False' || installed.reason !== 'Installing') continue;
    if (pxeInstallerSpec(vm, placedType(vm.status), network).mac === mac.toLowerCase()) return vm;
  }
  return undefined;
}

/** The MAC of the NIC on `network` in a domain definition that boots from the network, or undefined. */
export function pxeMacInDomain(xml: string, network: string): string | undefined {
  const domain = parseXml(xml);
  const os = child(domain, 'os');
  if (!os || !childrenNamed(os, 'boot').some((boot) => boot.attrs.dev === 'network')) return undefined;
  const devices = child(domain, 'devices');
  const nic = devices
    ? childrenNamed(devices, 'interface').find((n) => child(n, 'source')?.attrs.network === network)
    : undefined;
  return nic ? child(nic, 'mac')?.attrs.address?.toLowerCase() : undefined;
}

export class PxeHosts {
  readonly settings: PxeSettings;

  constructor(settings: Partial<PxeSettings> = {}) {
    this.settings = pxeSettings(settings);
  }

  /**
   * The pool, its boot file and the network on the host, made when missing. Rejects only with
   * 'unreachable'; anything else is a result naming what failed and what to do.
   */
  async prepare(hypervisor: Hypervisor): Promise<PxeHostResult> {
    const { pool, poolPath, network } = this.settings;
    let root: string;
    try {
      await hypervisor.ensureStoragePool({ name: pool, path: poolPath, mode: PXE_DIR_MODE });
      root = await hypervisor.storagePoolPath(pool);
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return { ok: false, message: `PXE storage pool ${pool} (the TFTP root): ${errorText(error)}` };
    }
    try {
      let xml: string;
      try {
        xml = networkXml(this.settings, root);
      } catch (error) {
        return { ok: false, message: `storage pool ${pool} cannot be a TFTP root: ${errorText(error)}` };
      }
      const existing = await hypervisor.network(network);
      if (!existing) await hypervisor.defineNetwork(xml);
      else if (!sameTftp(existing.xml, root)) {
        return {
          ok: false,
          message:
            `network ${network} exists on the host but does not serve storage pool ${pool} (${root}) by TFTP with boot file ${BOOT_SCRIPT}: ` +
            `remove it (virsh net-destroy/net-undefine ${network}) so that the controller defines it, or fix it`,
        };
      }
      if (!existing?.active) await hypervisor.startNetwork(network);
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return {
        ok: false,
        message: `network ${network}: ${errorText(error)} (the host needs dnsmasq (Debian dnsmasq-base) and iptables for it)`,
      };
    }
    try {
      const script = Buffer.from(bootScript());
      const existing = await hypervisor.volume(pool, BOOT_SCRIPT);
      if (!existing || existing.capacityBytes !== script.length) await this.write(hypervisor, BOOT_SCRIPT, script);
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return { ok: false, message: `PXE boot file ${BOOT_SCRIPT} in storage pool ${pool}: ${errorText(error)}` };
    }
    return { ok: true };
  }

  /** Writes the VM's script (replacing an older one). */
  async writeScript(hypervisor: Hypervisor, mac: string, script: MacScript): Promise<void> {
    await this.write(hypervisor, macScriptName(mac), Buffer.from(macScript(script)));
  }

  /** The VM's script as written, or undefined (none, or not one of ours). */
  async readScript(hypervisor: Hypervisor, mac: string): Promise<MacScript | undefined> {
    try {
      return cmdlineInScript(
        (await hypervisor.downloadVolume(this.settings.pool, macScriptName(mac), MAX_SCRIPT_BYTES)).toString('utf8'),
      );
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return undefined;
    }
  }

  async deleteScript(hypervisor: Hypervisor, mac: string): Promise<void> {
    await hypervisor.deleteVolume(this.settings.pool, macScriptName(mac));
  }

  private async write(hypervisor: Hypervisor, name: string, content: Buffer): Promise<void> {
    const { pool } = this.settings;
    await hypervisor.deleteVolume(pool, name);
    await hypervisor.createVolume(pool, { name, format: 'raw', capacityBytes: content.length, mode: PXE_FILE_MODE });
    try {
      await hypervisor.uploadVolume(pool, name, content);
    } catch (error) {
      // Never leave an empty or half-written script that a booting guest would read.
      await hypervisor.deleteVolume(pool, name).catch(() => false);
      throw error;
    }
  }
}

/** Whether a network definition serves `root` by TFTP with our boot file. */
function sameTftp(xml: string, root: string): boolean {
  const ips = childrenNamed(parseXml(xml), 'ip');
  return ips.some(
    (ip) => child(ip, 'tftp')?.attrs.root === root && child(ip, 'dhcp', 'bootp')?.attrs.file === BOOT_SCRIPT,
  );
}
