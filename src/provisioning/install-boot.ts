// How the installer of an InstallProfile boots: which kernel and initrd, with which arguments.
// Pure; the controller (src/controllers/install/flow.ts) puts the result into the domain as a direct
// kernel boot (<os><kernel>/<initrd>/<cmdline>), or, for a PXE boot, the same into the VM's
// iPXE script (pxe.ts).
//
//   kernel   spec.boot.kernelUrl, else <installTree>/images/pxeboot/vmlinuz
//   initrd   spec.boot.initrdUrl, else <installTree>/images/pxeboot/initrd.img
//   cmdline  inst.ks=<the VM's Kickstart URL> [inst.repo=<installTree>] inst.text [console=ttyS0] <spec.boot.extraArgs>
//
// inst.repo tells the initrd where the installer's second stage (images/install.img) is; it is
// given for http, https and ftp trees, which Anaconda takes as URLs. An nfs:// tree is left to
// the Kickstart's own `url` line, which Anaconda's initrd also reads (its inst.repo syntax for
// NFS is not a URL). console=ttyS0 puts the installer on the serial console the controller and
// `virsh console` read, unless the profile's extraArgs name a console themselves.
import type { InstallProfileSpec } from '../api/installprofile.js';
import { parseKickstartPath } from './install-server.js';

export interface InstallerMedia {
  kernelUrl: string;
  initrdUrl: string;
}

/** The installer's kernel and initrd URLs, as Anaconda install trees lay them out unless the profile says otherwise. */
export function installerMedia(spec: Pick<InstallProfileSpec, 'installTree' | 'boot'>): InstallerMedia {
  const tree = spec.installTree.replace(/\/+$/, '');
  return {
    kernelUrl: spec.boot?.kernelUrl ?? `${tree}/images/pxeboot/vmlinuz`,
    initrdUrl: spec.boot?.initrdUrl ?? `${tree}/images/pxeboot/initrd.img`,
  };
}

/** The installer's kernel command line for a Kickstart at `kickstartUrl`. */
export function installerCmdline(spec: Pick<InstallProfileSpec, 'installTree' | 'boot'>, kickstartUrl: string): string {
  const extra = (spec.boot?.extraArgs ?? '').split(' ').filter((word) => word !== '');
  const words = [`inst.ks=${kickstartUrl}`];
  if (/^(https?|ftp):\/\//.test(spec.installTree)) words.push(`inst.repo=${spec.installTree}`);
  if (!extra.some((word) => word === 'inst.text' || word === 'inst.graphical' || word.startsWith('inst.vnc')))
    words.push('inst.text');
  if (!extra.some((word) => word.startsWith('console='))) words.push('console=ttyS0');
  for (const word of extra) if (!words.includes(word)) words.push(word);
  return words.join(' ');
}

/**
 * The token of the Kickstart URL in a command line this controller wrote for VM `uid`, or
 * undefined (no inst.ks, another VM's, not one of ours). A restarted controller takes the token
 * back from the domain's definition on the host this way.
 */
export function tokenInCmdline(cmdline: string, uid: string): string | undefined {
  for (const word of cmdline.split(' ')) {
    if (!word.startsWith('inst.ks=')) continue;
    let url: URL;
    try {
      url = new URL(word.slice('inst.ks='.length));
    } catch {
      return undefined;
    }
    const parsed = parseKickstartPath(url.pathname.replace(/^.*(?=\/ks\/[^/]+\/[^/]+$)/, ''));
    return parsed?.uid === uid && url.search === '' ? parsed.token : undefined;
  }
  return undefined;
}
