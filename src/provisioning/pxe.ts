// PXE boot of an installer, pure: the libvirt network that offers it on a host, and the iPXE
// scripts its TFTP root serves. The controller (src/controllers/install/pxe.ts) puts these on the
// host; this file only renders them, and refuses every value that could change what they say.
//
// How a VM boots its installer by PXE:
//
//   QEMU's iPXE NIC ROM (Debian ipxe-qemu) asks for an address on the network `vf-install`;
//   libvirt's dnsmasq answers with the boot file `vf-pxe-boot.ipxe` (<bootp file=…>), which
//   iPXE fetches by TFTP from the network's TFTP root (<tftp root=…>): the directory of the
//   controller's storage pool `vf-pxe` on that host. That script is the same for every VM:
//
//     #!ipxe
//     chain vf-pxe-${netX/mac:hexhyp}.ipxe || goto none
//     …
//
//   so iPXE then fetches the script of its own MAC, `vf-pxe-52-54-00-12-34-56.ipxe`, which the
//   controller wrote when the VM's install started and deletes when it ends:
//
//     #!ipxe
//     kernel vf-installer-<digest>-vmlinuz inst.ks=http://…/ks/<uid>/<token> inst.text console=ttyS0
//     initrd vf-installer-<digest>-initrd.img
//     boot
//
//   (kernel and initrd are volumes of the same pool: install-media.ts downloads them there).
//   A MAC without a script (an install that ended, a stray guest) gets a message on the console
//   and `exit`: the firmware goes on to its next boot device, never a power-off, which the
//   controller would take for a finished install.
//
// iPXE reads a script line by line and expands `${…}`; `||`, `&&`, quotes, `\` and `#` have
// meaning in it. So nothing is escaped into a script: file names are plain words, and every
// word of the command line passes a gate that refuses `$ | & ; # " ' \ \``, control characters
// and anything but single spaces between words (the API's KERNEL_ARGS and INSTALL_URL patterns
// refuse them already; this is the second layer, as in kickstart.ts).
//
// Network XML is built with el() (the XML library escapes every value). libvirt copies the TFTP
// root into dnsmasq's configuration file as `tftp-root=PATH`, a line of `key=value[,…]`: so the
// path is refused, not escaped, unless it is plain path characters (no comma, space or newline).
import { el, serializeXml } from '../hypervisors/xml.js';

/** Defaults of the install network on every host; override through InstallFlow options. */
export const PXE_DEFAULTS = {
  /** libvirt network name. */
  network: 'vf-install',
  /** Its bridge on the host (at most 15 characters). */
  bridge: 'vfinstall0',
  /** The host's address on it; the network is its /24. */
  address: '192.168.213.1',
  /** The storage pool (a directory pool the controller defines) that is the TFTP root. */
  pool: 'vf-pxe',
  /** Its directory on the host, when the controller defines it. */
  poolPath: '/var/lib/libvirt/virtfleet-pxe',
} as const;

export type PxeSettings = { [K in keyof typeof PXE_DEFAULTS]: string };

/** The network-wide boot file (dnsmasq's dhcp-boot), a volume of the PXE pool. */
export const BOOT_SCRIPT = 'vf-pxe-boot.ipxe';
const MAC_SCRIPT_PREFIX = 'vf-pxe-';

/** A value refused on its way into a network definition or an iPXE script. */
export class PxeValueError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PxeValueError';
  }
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BRIDGE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,14}$/;
const PATH = /^(\/[A-Za-z0-9._+-]+)+$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
/** One word of a kernel command line as it may appear in an iPXE script. */
const CMDLINE_WORD = /^[A-Za-z0-9._,:=/+@%~?[\]-]+$/;

function check(field: string, value: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value))
    throw new PxeValueError(field, `${JSON.stringify(value)} is not ${what}`);
  return value;
}

/** A MAC as libvirt writes it (lower-case, colons). */
export function pxeMac(value: string): string {
  return check('mac', value, MAC, 'a MAC address such as 52:54:00:12:34:56');
}

/** The script volume of a MAC: `vf-pxe-52-54-00-12-34-56.ipxe` (iPXE's ${mac:hexhyp}). */
export function macScriptName(mac: string): string {
  return `${MAC_SCRIPT_PREFIX}${pxeMac(mac).replaceAll(':', '-')}.ipxe`;
}

/** Checks the settings of the install network; returns them. */
export function pxeSettings(settings: Partial<PxeSettings> = {}): PxeSettings {
  const s = { ...PXE_DEFAULTS, ...settings };
  check('network', s.network, NAME, 'a libvirt network name (letters, digits, . _ -)');
  check('bridge', s.bridge, BRIDGE, 'a bridge name (letters, digits, _ -, at most 15)');
  check('pool', s.pool, NAME, 'a storage pool name (letters, digits, . _ -)');
  pxePath('poolPath', s.poolPath);
  const address = check('address', s.address, IPV4, 'an IPv4 address');
  if (address.endsWith('.0') || address.endsWith('.255') || address.endsWith('.254')) {
    throw new PxeValueError('address', `${address} must be a host address of its /24 below .254 (e.g. 192.168.213.1)`);
  }
  return s;
}

/** An absolute directory of plain path characters (it becomes a dnsmasq option). */
export function pxePath(field: string, value: string): string {
  check(field, value, PATH, "an absolute path of letters, digits and . _ + - (no spaces, commas or '..')");
  if (value.split('/').some((segment) => segment === '.' || segment === '..'))
    throw new PxeValueError(field, `${JSON.stringify(value)} contains a '.' or '..' segment`);
  return value;
}

/**
 * The install network: NAT to the host's own networks (the installer reaches the install
 * endpoint and the install tree through the host), DHCP on its /24 with the boot file, and the
 * PXE pool's directory as TFTP root.
 */
export function networkXml(settings: PxeSettings, tftpRoot: string): string {
  const s = pxeSettings(settings);
  const root = pxePath('tftpRoot', tftpRoot);
  const prefix = s.address.split('.').slice(0, 3).join('.');
  return serializeXml(
    el(
      'network',
      {},
      el('name', {}, s.network),
      el('forward', { mode: 'nat' }),
      el('bridge', { name: s.bridge, stp: 'off' }),
      el(
        'ip',
        { address: s.address, netmask: '255.255.255.0' },
        el('tftp', { root }),
        el(
          'dhcp',
          {},
          el('range', { start: `${prefix}.10`, end: `${prefix}.250` }),
          el('bootp', { file: BOOT_SCRIPT }),
        ),
      ),
    ),
  );
}

/** The network-wide boot script: chain to the script of this NIC's MAC, or give the boot up. */
export function bootScript(): string {
  return [
    '#!ipxe',
    // netX is the device iPXE booted from; hexhyp writes the MAC as 52-54-00-12-34-56.
    'chain vf-pxe-${netX/mac:hexhyp}.ipxe || goto none',
    ':none',
    'echo virtfleet: no install under way for ${netX/mac}: nothing to boot',
    'exit 1',
    '',
  ].join('\n');
}

export interface MacScript {
  /** TFTP-relative names (volumes of the PXE pool). */
  kernel: string;
  initrd: string;
  /** The installer's command line (installerCmdline()), with the Kickstart URL and its token. */
  cmdline: string;
}

/** The per-VM script: load the installer's kernel with its command line, and its initrd. */
export function macScript(script: MacScript): string {
  const kernel = check('kernel', script.kernel, FILE_NAME, 'a plain file name');
  const initrd = check('initrd', script.initrd, FILE_NAME, 'a plain file name');
  return ['#!ipxe', `kernel ${kernel} ${scriptCmdline(script.cmdline)}`.trimEnd(), `initrd ${initrd}`, 'boot', ''].join(
    '\n',
  );
}

/** A kernel command line fit for an iPXE script: words of safe characters, single spaces. */
export function scriptCmdline(cmdline: string): string {
  if (typeof cmdline !== 'string' || cmdline.length > 2048)
    throw new PxeValueError('cmdline', 'must be a string of at most 2048 characters');
  if (cmdline === '') return '';
  const words = cmdline.split(' ');
  words.forEach((word, i) => {
    if (word === '')
      throw new PxeValueError('cmdline', 'words must be separated by single spaces, with none at either end');
    if (!CMDLINE_WORD.test(word)) {
      throw new PxeValueError(
        `cmdline word ${i + 1}`,
        `${JSON.stringify(word)} has a character an iPXE script would read as syntax or that has no place on a command line ($ | & ; # quotes \\ control characters are refused)`,
      );
    }
  });
  return cmdline;
}

/** The command line of a script this controller wrote (for a restarted controller), or undefined. */
export function cmdlineInScript(text: string): { kernel: string; initrd: string; cmdline: string } | undefined {
  const lines = text.split('\n');
  if (lines[0] !== '#!ipxe') return undefined;
  const kernelLine = lines.find((line) => line.startsWith('kernel '));
  const initrdLine = lines.find((line) => line.startsWith('initrd '));
  if (!kernelLine || !initrdLine) return undefined;
  const [, kernel = '', ...words] = kernelLine.split(' ');
  return { kernel, initrd: initrdLine.slice('initrd '.length), cmdline: words.join(' ') };
}
