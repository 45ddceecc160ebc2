// Starting an install: the endpoint listens, the profile is Valid, the installer's kernel and
// initrd are on the host (media.ts; for PXE, the install network and its TFTP root, pxe.ts), then
// a token is issued and the session begins. Until then the VM waits with Installed=False and a
// reason that says what it waits for.
import { isHypervisorError, type DomainStatus } from '../../hypervisors/hypervisor.js';
import { installerCmdline, installerMedia } from '../../provisioning/install-boot.js';
import { redactKickstartUrl } from '../../provisioning/install-server.js';
import { findCondition } from '../../runtime/conditions.js';
import { objectKey } from '../../runtime/informer.js';
import { INSTALL_PROFILE_CONDITIONS, VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { VmObject } from '../resources.js';
import { isActive } from '../run-strategy.js';
import { errorText } from '../error-text.js';
import { placedType, pxeInstallerSpec, pxeMacHolder } from './pxe.js';
import { setInstalling } from './progress.js';
import {
  INSTALL_LOOK_MS,
  type InstallContext,
  type InstallerDomain,
  type InstallKit,
  type InstallPlan,
  type Session,
} from './types.js';

/** Starts an install: profile, endpoint and media first, then a token. */
export async function startInstall(
  kit: InstallKit,
  ctx: InstallContext,
  domain: DomainStatus | undefined,
  retry: { id: string } | undefined,
): Promise<InstallPlan> {
  const { vm, draft } = ctx;
  const uid = vm.metadata.uid ?? '';
  const namespace = vm.metadata.namespace ?? '';
  const profileName = vm.spec.install!.profileRef.name;
  const shown = `${namespace}/${profileName}`;
  const wait = (reason: string, message: string, requeueAfterMs?: number): InstallPlan => {
    draft.phase('Provisioning');
    const before = draft.condition(C.Installed)?.message;
    draft.set(C.Installed, 'False', reason, message);
    draft.set(C.Ready, 'False', reason, 'the install has not started (see Installed)');
    if (before !== message && (reason === R.InstallMediaFailed || reason === R.InstallEndpointUnavailable))
      ctx.event('Warning', reason, message);
    return { kind: 'wait', ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }) };
  };

  const server = kit.options.server;
  if (!server) {
    return wait(
      R.InstallEndpointUnavailable,
      'the controller runs no install endpoint: start it with --install-address (and --install-url-base); see docs/provisioning.md',
    );
  }
  const endpoint = server.status();
  if (endpoint.kind === 'failed')
    return wait(R.InstallEndpointUnavailable, `the install endpoint cannot listen: ${endpoint.message}`);
  if (endpoint.kind !== 'listening')
    return wait(R.InstallEndpointUnavailable, 'waiting for the install endpoint to listen');

  const profile = kit.options.profiles?.get(`${namespace}/${profileName}`);
  if (!profile)
    return wait(
      R.ProfileNotFound,
      `InstallProfile ${shown} does not exist: create it, or fix spec.install.profileRef.name`,
    );
  const valid = findCondition(profile.status?.conditions, INSTALL_PROFILE_CONDITIONS.Valid);
  if (valid?.status !== 'True') {
    return wait(
      R.ProfileNotValid,
      valid
        ? `InstallProfile ${shown} is not valid (${valid.reason}): ${valid.message}`
        : `InstallProfile ${shown} has not been checked yet`,
    );
  }
  if (valid.observedGeneration !== undefined && valid.observedGeneration !== profile.metadata.generation) {
    return wait(R.ProfileNotValid, `InstallProfile ${shown} changed and has not been checked again yet`);
  }

  const pxe = profile.spec.boot.method === 'pxe';
  if (pxe && placedType(draft.status) === 'xen' && vm.spec.xen?.mode === 'pv') {
    return wait(
      R.ProfileNotValid,
      `InstallProfile ${shown} boots its installer by PXE, which a Xen PV guest cannot do (it has no firmware): ` +
        'use a profile with spec.boot.method kernel, or xen.mode hvm',
    );
  }
  if (pxe) {
    // The network and the TFTP root first: the installer's files go into that pool.
    const host = await kit.pxe.prepare(ctx.hypervisor);
    if (!host.ok) return wait(R.InstallMediaFailed, `${host.message} (host ${ctx.hypervisor.uri}); retrying`, 30_000);
  }
  const urls = installerMedia(profile.spec);
  const mediaPool = pxe ? kit.pxe.settings.pool : ctx.pool.spec.storage.pool;
  const media = await kit.media.ensure(ctx.hypervisor, mediaPool, urls);
  if (media.state === 'pending') return wait(R.PreparingInstall, media.message, media.requeueAfterMs);
  if (media.state === 'failed')
    return wait(R.InstallMediaFailed, `${media.message} (host ${ctx.hypervisor.uri}); retrying`, media.requeueAfterMs);

  const token = server.issue(uid);
  const url = server.urlFor(uid, token);
  const cmdline = installerCmdline(profile.spec, url);
  let domainPlan: InstallerDomain;
  let pxeState: Session['pxe'];
  if (pxe) {
    const installer = pxeInstallerSpec(vm, placedType(draft.status), kit.pxe.settings.network);
    const claim = `${ctx.hypervisor.uri} ${installer.mac}`;
    // Claimed in this process (an install starting now) or, per the cluster, under way.
    const holder = kit.sessions.macs.get(claim);
    const listed = pxeMacHolder(
      kit.options.vms.list(),
      uid,
      draft.status.host ?? '',
      installer.mac,
      kit.pxe.settings.network,
    );
    const other =
      holder !== undefined && holder !== uid
        ? (kit.sessions.get(holder)?.key ?? holder)
        : listed
          ? objectKey(listed as VmObject)
          : undefined;
    if (other !== undefined) {
      server.revoke(uid);
      return wait(
        R.InstallMacInUse,
        `VM ${other} installs on this host with the same MAC ${installer.mac} (spec.networks[].macAddress); ` +
          'the install starts once that one ends, or give this VM another MAC',
        30_000,
      );
    }
    kit.sessions.macs.set(claim, uid);
    try {
      await kit.pxe.writeScript(ctx.hypervisor, installer.mac, {
        kernel: baseName(media.kernel),
        initrd: baseName(media.initrd),
        cmdline,
      });
    } catch (error) {
      kit.sessions.macs.delete(claim);
      server.revoke(uid);
      if (isHypervisorError(error, 'unreachable')) throw error;
      return wait(
        R.InstallMediaFailed,
        `cannot write the iPXE script of MAC ${installer.mac} into storage pool ${kit.pxe.settings.pool} ` +
          `(host ${ctx.hypervisor.uri}): ${errorText(error)}; retrying`,
        30_000,
      );
    }
    domainPlan = { spec: { ...installer.spec, kernelBoot: undefined }, bootDevice: 'network' };
    pxeState = { hypervisor: ctx.hypervisor, mac: installer.mac };
  } else {
    domainPlan = { spec: { kernelBoot: { kernel: media.kernel, initrd: media.initrd, cmdline } } };
  }
  const now = kit.now();
  const timeoutMs = kit.options.timeoutMs ?? profile.spec.timeoutMinutes * 60_000;
  const session: Session = {
    key: objectKey(vm),
    domain: domainPlan,
    method: pxe ? 'pxe' : 'kernel',
    ...(pxeState ? { pxe: pxeState } : {}),
    startedAt: now,
    deadline: now + timeoutMs,
    profile: shown,
    shownUrl: redactKickstartUrl(url),
    interrupted: false,
  };
  kit.sessions.set(uid, session);
  // Dropped first: the new condition's lastTransitionTime is the start the timeout counts from.
  draft.drop(C.Installed);
  setInstalling(kit, draft, session);
  draft.phase('Installing');
  const how = pxe
    ? `by PXE on network ${kit.pxe.settings.network} (MAC ${pxeState?.mac ?? ''})`
    : 'by direct kernel boot';
  ctx.event(
    'Normal',
    E.InstallStarted,
    `installing InstallProfile ${shown} ${how}; Kickstart at ${session.shownUrl}; timeout ${Math.round(timeoutMs / 60_000)} min`,
  );
  return {
    kind: 'install',
    domain: session.domain,
    startNow: retry !== undefined || (domain !== undefined && isActive(domain.state)),
    requeueAfterMs: Math.min(timeoutMs, INSTALL_LOOK_MS),
  };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
