// After a controller restart: an install under way is taken up from the domain's definition on
// the host (the kernel command line, or the iPXE script named by the MAC of its install NIC),
// where its token is; the timeout counts from Installed's lastTransitionTime.
import { isHypervisorError } from '../../hypervisors/hypervisor.js';
import { child, parseXml, type XmlElement } from '../../hypervisors/xml.js';
import { tokenInCmdline } from '../../provisioning/install-boot.js';
import { redactKickstartUrl } from '../../provisioning/install-server.js';
import type { VirtualMachineCondition } from '../../api/conditions.js';
import { objectKey } from '../../runtime/informer.js';
import { placedType, pxeInstallerSpec, pxeMacInDomain } from './pxe.js';
import {
  DEFAULT_TIMEOUT_MS,
  type InstallContext,
  type InstallerDomain,
  type InstallKit,
  type Session,
} from './types.js';

/** After a controller restart: the install under way, from the domain's definition on the host. */
export async function resumeInstall(
  kit: InstallKit,
  ctx: InstallContext,
  installed: VirtualMachineCondition | undefined,
): Promise<Session | undefined> {
  const { vm, hypervisor } = ctx;
  const uid = vm.metadata.uid ?? '';
  const server = kit.options.server;
  if (!server) return undefined;
  let xml: string;
  try {
    xml = await hypervisor.xml(uid, { inactive: true });
  } catch (error) {
    if (isHypervisorError(error, 'not-found')) return undefined;
    throw error;
  }
  const os: XmlElement | undefined = child(parseXml(xml), 'os');
  const text = (name: string) => (os ? child(os, name)?.text.trim() || undefined : undefined);
  const [kernel, initrd] = [text('kernel'), text('initrd')];
  let cmdline = text('cmdline');
  let domainPlan: InstallerDomain | undefined =
    kernel && initrd && cmdline ? { spec: { kernelBoot: { kernel, initrd, cmdline } } } : undefined;
  let pxeState: Session['pxe'];
  // A PXE install: its command line is in its iPXE script on the host, named by its MAC.
  const mac = domainPlan ? undefined : pxeMacInDomain(xml, kit.pxe.settings.network);
  if (mac) {
    const script = await kit.pxe.readScript(hypervisor, mac);
    if (script) {
      cmdline = script.cmdline;
      const installer = pxeInstallerSpec(vm, placedType(ctx.draft.status), kit.pxe.settings.network);
      domainPlan = { spec: { ...installer.spec, kernelBoot: undefined }, bootDevice: 'network' };
      pxeState = { hypervisor, mac };
      kit.sessions.macs.set(`${hypervisor.uri} ${mac}`, uid);
    }
  }
  const token = cmdline ? tokenInCmdline(cmdline, uid) : undefined;
  if (!domainPlan || !cmdline || !token || !server.adopt(uid, token)) return undefined;
  const namespace = vm.metadata.namespace ?? '';
  const profileName = vm.spec.install!.profileRef.name;
  const profile = kit.options.profiles?.get(`${namespace}/${profileName}`);
  const startedAt = installed ? Date.parse(installed.lastTransitionTime) : kit.now();
  const timeoutMs = kit.options.timeoutMs ?? (profile ? profile.spec.timeoutMinutes * 60_000 : DEFAULT_TIMEOUT_MS);
  const url =
    cmdline
      .split(' ')
      .find((word) => word.startsWith('inst.ks='))
      ?.slice('inst.ks='.length) ?? '';
  const session: Session = {
    key: objectKey(vm),
    domain: domainPlan,
    method: pxeState ? 'pxe' : 'kernel',
    ...(pxeState ? { pxe: pxeState } : {}),
    startedAt,
    deadline: startedAt + timeoutMs,
    profile: `${namespace}/${profileName}`,
    shownUrl: redactKickstartUrl(url),
    interrupted: false,
  };
  kit.sessions.set(uid, session);
  kit.options.logger.info(
    { vm: objectKey(vm), kickstart: session.shownUrl },
    'install under way taken up from the domain definition',
  );
  return session;
}
