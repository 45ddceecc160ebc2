// The install step of the VirtualMachine controller, for VMs with spec.install.profileRef.
//
//   the profile is Valid, the install endpoint listens, the installer's kernel and initrd are on
//   the host (install-media.ts)
//     → a token is issued, the domain is defined to boot the installer:
//       spec.boot.method kernel: directly, <kernel>/<initrd> from the HostPool's storage pool,
//         <cmdline>inst.ks=<url> inst.text …;
//       spec.boot.method pxe (install-pxe.ts): from the network, its one NIC on the host's
//         install network `vf-install` (made by the controller when missing), whose TFTP root
//         serves the VM's iPXE script with the same kernel, initrd and command line
//       phase Installing, Installed=False (Installing, the URL without its token)
//     → the installer fetches its Kickstart from the endpoint (an Event each time); the
//       Kickstart ends with `poweroff`
//     → the guest powers itself off (shutoff, reason shutdown, not asked by the controller)
//     → Installed=True, the token is revoked, the domain is redefined to boot from its first
//       disk and started → Running
//   no power-off within the timeout (profile spec.timeoutMinutes) → the domain is destroyed,
//   phase Failed, Installed=False (InstallTimedOut); a crashed or destroyed installer → the same
//   with InstallFailed. Both hold the VM stopped until `virtfleet vm restart` (or `start`), which
//   starts the install again with a new token.
//
// What survives a controller restart: Installed=True in status means "boot from disk", for
// good. Installed=False/Installing means an install is under way; its start is the condition's
// lastTransitionTime (the timeout counts from there), and its token is read back from the
// host, where the installer reads it too (the domain's kernel command line, or the VM's iPXE
// script named by the MAC of the domain's NIC on the install network), so a restart interrupts
// nothing. The token never goes into the cluster, not even as a hash.
//
// The reconciler calls prepare() before it defines the domain (the plan says which boot to
// define and whether to hold the power steps), afterDefine() once it is defined, and report()
// after its power steps.
import type { VirtualMachineSpec } from '../api/virtualmachine.js';
import { ignoring, isHypervisorError, type DomainStatus, type Hypervisor } from '../hypervisors/hypervisor.js';
import { child, parseXml, type XmlElement } from '../hypervisors/xml.js';
import type { Logger } from '../observability/logging.js';
import { installerCmdline, installerMedia, tokenInCmdline } from '../provisioning/install-boot.js';
import { redactKickstartUrl, type InstallServer, type KickstartAnswer } from '../provisioning/install-server.js';
import { renderProfile } from '../provisioning/profile.js';
import { HashMemo } from '../provisioning/profile-secrets.js';
import { findCondition, type Condition } from '../runtime/conditions.js';
import type { EventType } from '../runtime/events.js';
import { isBeingDeleted } from '../runtime/finalizers.js';
import { objectKey, type Informer } from '../runtime/informer.js';
import type { KubeClient } from '../runtime/kube-client.js';
import { watchMapped, type Source } from '../runtime/sources.js';
import { untilAborted } from '../runtime/abort.js';
import { InstallMedia } from './install-media.js';
import { PxeHosts, placedType, pxeInstallerSpec, pxeMacHolder, pxeMacInDomain } from './install-pxe.js';
import type { PxeSettings } from '../provisioning/pxe.js';
import { INSTALL_PROFILE_CONDITIONS, VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from './reasons.js';
import { problemsMessage, secretLookup, type ProfileObject } from './installprofile.js';
import type { PoolObject, VmObject } from './resources.js';
import { isActive } from './run-strategy.js';
import { ACTION_ANNOTATION, actionRequest, heldBy, type ActionDecision } from './vm-actions.js';
import type { VmStatusDraft } from './vm-status.js';

export type KernelBoot = NonNullable<VirtualMachineSpec['kernelBoot']>;

/** How the installer's domain differs from the VM's own: spec fields replaced, and the boot device. */
export interface InstallerDomain {
  spec: Partial<VirtualMachineSpec>;
  /** 'network': PXE. Otherwise the spec's kernelBoot boots. */
  bootDevice?: 'network';
}

/** What the reconciler does with the VM this time. */
export type InstallPlan =
  /** No install (none asked, done, or not to be started): the domain boots from disk, power as usual. */
  | { kind: 'none' }
  /** The install cannot start yet (the Installed condition says why): nothing is defined. */
  | { kind: 'wait'; requeueAfterMs?: number }
  /** Installing: define the installer's domain; power as usual (startNow: start it at once, whatever the runStrategy). */
  | { kind: 'install'; domain: InstallerDomain; startNow: boolean; requeueAfterMs: number }
  /** Just installed: define the disk boot and start it. */
  | { kind: 'installed'; startNow: boolean }
  /** The install failed: the domain boots from disk once asked; no power steps until a retry. */
  | { kind: 'failed' };

export interface InstallContext {
  vm: VmObject;
  pool: PoolObject;
  hypervisor: Hypervisor;
  draft: VmStatusDraft;
  /** This process asked the domain to shut down (runStrategy Halted, stop, restart) and has not seen it stopped yet. */
  shutdownAsked: boolean;
  recordAction: (record: NonNullable<ActionDecision['record']>) => void;
  event: (type: EventType, reason: string, message: string) => void;
}

export interface InstallFlowOptions {
  client: KubeClient;
  vms: Informer<VmObject>;
  /** Without an informer of InstallProfiles, VMs with spec.install wait (Installed=False, ProfileNotFound). */
  profiles?: Informer<ProfileObject>;
  /** Without an endpoint, VMs with spec.install wait (Installed=False, InstallEndpointUnavailable). */
  server?: InstallServer;
  logger: Logger;
  /** Overrides every profile's spec.timeoutMinutes (tests). */
  timeoutMs?: number;
  media?: InstallMedia;
  /** Records Events on VMs (for fetches of Kickstart files, outside reconciles). */
  event: (vm: VmObject, type: EventType, reason: string, message: string) => void;
  /** The install network and PXE pool on the hosts (src/provisioning/pxe.ts PXE_DEFAULTS). */
  pxe?: Partial<PxeSettings>;
}

interface Session {
  key: string;
  /** The installer's domain, as defined while the install runs. */
  domain: InstallerDomain;
  method: 'kernel' | 'pxe';
  /** PXE: the host with the VM's script, and the MAC that names it (deleted when the install ends). */
  pxe?: { hypervisor: Hypervisor; mac: string };
  startedAt: number;
  deadline: number;
  /** namespace/name of the profile, for messages. */
  profile: string;
  /** The Kickstart URL without its token. */
  shownUrl: string;
  /** The domain was seen stopped while a stop was asked: that stop did not end the install. */
  interrupted: boolean;
}

const DEFAULT_TIMEOUT_MS = 60 * 60_000;
/** Installed=False reasons from which `virtfleet vm start|restart` starts an install. */
const RETRYABLE = new Set<string>([R.InstallTimedOut, R.InstallFailed, R.InstallNotStarted]);
/** Phases of a VM whose domain has run: an install added later is not started behind the user's back. */
const RAN = new Set(['Running', 'Stopped', 'Paused', 'CrashLoopBackOff', 'Migrating']);

export class InstallFlow {
  /** By VM UID: installs under way in this process. */
  private readonly sessions = new Map<string, Session>();
  /**
   * By "<host URI> <MAC>": the VM whose iPXE script that is. Two installing VMs of one host with
   * the same MAC (set by the user) would overwrite each other's script: the second one waits.
   */
  private readonly macs = new Map<string, string>();
  private readonly media: InstallMedia;
  private readonly memo = new HashMemo();
  private readonly changeListeners = new Set<() => void>();
  private readonly pxe: PxeHosts;

  constructor(private readonly options: InstallFlowOptions) {
    this.media = options.media ?? new InstallMedia({ onJobEnd: () => this.changed() });
    this.pxe = new PxeHosts(options.pxe);
    options.server?.serveFrom((uid, client) => this.serve(uid, client));
    options.server?.onStateChange(() => this.changed());
  }

  /** What to do with the VM's install (and its boot) in this reconcile. */
  async prepare(ctx: InstallContext): Promise<InstallPlan> {
    const { vm, draft } = ctx;
    const uid = vm.metadata.uid ?? '';
    const installed = draft.condition(C.Installed);
    if (!vm.spec.install) {
      this.end(uid);
      if (installed && installed.status !== 'True') draft.drop(C.Installed);
      return { kind: 'none' };
    }
    if (installed?.status === 'True') {
      this.end(uid);
      return { kind: 'none' };
    }
    const request = this.startRequest(vm, draft);
    const retry = installed?.status === 'False' && RETRYABLE.has(installed.reason) ? request : undefined;
    if (installed?.status === 'False' && RETRYABLE.has(installed.reason) && !retry) {
      if (installed.reason === R.InstallNotStarted) return { kind: 'none' };
      return this.holdFailed(vm, draft, installed);
    }
    const domain = await ctx.hypervisor.lookup(uid);
    let session = retry ? undefined : this.sessions.get(uid);
    if (!session && !retry && domain && (!installed || installed.reason === R.Installing))
      session = await this.resume(ctx, installed);
    if (session) return this.drive(ctx, session, domain);

    if (!retry && !installed && domain && RAN.has(draft.status.phase ?? '')) {
      draft.set(
        C.Installed,
        'False',
        R.InstallNotStarted,
        `spec.install was set on a VM that has run already; it is not reinstalled behind your back: \`virtfleet vm restart ${vm.metadata.name ?? ''}\` installs it (erasing its disks as the profile says)`,
      );
      return { kind: 'none' };
    }
    if (!retry && !this.willRun(vm, request)) {
      // Not before it is to run: the timeout would count while nothing installs.
      draft.phase('Stopped');
      const how =
        vm.spec.runStrategy === 'Manual'
          ? `runStrategy Manual: \`virtfleet vm start ${vm.metadata.name ?? ''}\` starts it`
          : `runStrategy ${vm.spec.runStrategy}, or held by ${ACTION_ANNOTATION}`;
      draft.set(C.Installed, 'False', R.WaitingForStart, `the install starts when the VM is started (${how})`);
      draft.set(C.Ready, 'False', R.Stopped, 'not started yet; the install starts with it (see Installed)');
      return { kind: 'wait' };
    }
    const plan = await this.start(ctx, domain, retry);
    if (retry && plan.kind === 'install') {
      ctx.recordAction({
        id: retry.id,
        action: retry.action,
        state: 'Succeeded',
        message: `the install of InstallProfile ${this.sessions.get(uid)?.profile ?? ''} starts again`,
      });
    }
    return plan;
  }

  /** After the domain is defined: starts it when the plan says so. Returns its state. */
  async afterDefine(ctx: InstallContext, plan: InstallPlan, domain: DomainStatus): Promise<DomainStatus> {
    const { vm, hypervisor } = ctx;
    const uid = vm.metadata.uid ?? '';
    if ((plan.kind !== 'install' && plan.kind !== 'installed') || !plan.startNow) return domain;
    if (plan.kind === 'install' && isActive(domain.state)) {
      // A retry of a VM that runs: it restarts into the installer.
      await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
    }
    if (!isActive((await hypervisor.state(uid)).state)) {
      await ignoring(['invalid-state', 'not-found'], () => hypervisor.start(uid));
      ctx.event(
        'Normal',
        E.Started,
        plan.kind === 'install'
          ? `started into the installer on ${hypervisor.uri}`
          : `started from its disk on ${hypervisor.uri}`,
      );
    }
    return hypervisor.state(uid);
  }

  /**
   * After the power steps: an installing VM that runs is Installing, not Running. Returns true
   * when it reported the VM (the reconciler's own report would say Running).
   */
  report(vm: VmObject, plan: InstallPlan, domain: DomainStatus, draft: VmStatusDraft): boolean {
    if (plan.kind !== 'install' || !isActive(domain.state)) return false;
    const session = this.sessions.get(vm.metadata.uid ?? '');
    draft.phase('Installing');
    draft.set(
      C.Ready,
      'False',
      R.Installing,
      `installing InstallProfile ${session?.profile ?? ''}; the VM boots from its disk once the installer powers it off`,
    );
    return true;
  }

  /** The VM is gone (or no longer installs): its token is revoked. */
  forget(uid: string): void {
    this.end(uid);
  }

  /** Enqueues VMs whose install waits for a profile, the endpoint or a download. */
  source(profiles: Informer<ProfileObject> | undefined): Source[] {
    const { vms } = this.options;
    const waiting = () =>
      vms
        .list()
        .filter(
          (vm) =>
            vm.spec.install &&
            findCondition(vm.status?.conditions as Condition[] | undefined, C.Installed)?.status !== 'True',
        );
    const onChange: Source = async (controller, signal) => {
      const listener = () => {
        for (const vm of waiting()) controller.enqueue(objectKey(vm));
      };
      this.changeListeners.add(listener);
      await untilAborted(signal);
      this.changeListeners.delete(listener);
    };
    if (!profiles) return [onChange];
    const byProfile = watchMapped(profiles, (profile) =>
      waiting()
        .filter(
          (vm) =>
            vm.metadata.namespace === profile.metadata.namespace &&
            vm.spec.install?.profileRef.name === profile.metadata.name,
        )
        .map(objectKey),
    );
    return [onChange, byProfile];
  }

  // ---- the steps ----------------------------------------------------------------------------

  /** Whether a new install would run now: by runStrategy, or a start asked for. */
  private willRun(vm: VmObject, request: { id: string } | undefined): boolean {
    if (vm.spec.runStrategy === 'Halted' || heldBy(vm.metadata.annotations)) return false;
    return vm.spec.runStrategy !== 'Manual' || request !== undefined;
  }

  /** A new `virtfleet vm start|restart` request (an action-id not seen before). */
  private startRequest(vm: VmObject, draft: VmStatusDraft): { id: string; action: 'start' | 'restart' } | undefined {
    if (vm.spec.runStrategy === 'Halted') return undefined;
    const request = actionRequest(vm.metadata.annotations);
    if (!request || 'error' in request || (request.action !== 'start' && request.action !== 'restart'))
      return undefined;
    const last = draft.status.lastAction;
    if (last?.id === request.id && last.action === request.action) return undefined;
    return { id: request.id, action: request.action };
  }

  private holdFailed(vm: VmObject, draft: VmStatusDraft, installed: Condition): InstallPlan {
    draft.phase('Failed');
    draft.set(
      C.Ready,
      'False',
      installed.reason,
      `the install failed (see Installed); \`virtfleet vm restart ${vm.metadata.name ?? ''}\` starts it again`,
    );
    return { kind: 'failed' };
  }

  /** Starts an install: profile, endpoint and media first, then a token. */
  private async start(
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

    const server = this.options.server;
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

    const profile = this.options.profiles?.get(`${namespace}/${profileName}`);
    if (!profile)
      return wait(
        R.ProfileNotFound,
        `InstallProfile ${shown} does not exist: create it, or fix spec.install.profileRef.name`,
      );
    const valid = findCondition(
      profile.status?.conditions as Condition[] | undefined,
      INSTALL_PROFILE_CONDITIONS.Valid,
    );
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
        `InstallProfile ${shown} boots its installer by PXE, which a Xen PV guest cannot do (it has no firmware): use a profile with spec.boot.method kernel, or xen.mode hvm`,
      );
    }
    if (pxe) {
      // The network and the TFTP root first: the installer's files go into that pool.
      const host = await this.pxe.prepare(ctx.hypervisor);
      if (!host.ok) return wait(R.InstallMediaFailed, `${host.message} (host ${ctx.hypervisor.uri}); retrying`, 30_000);
    }
    const urls = installerMedia(profile.spec);
    const mediaPool = pxe ? this.pxe.settings.pool : ctx.pool.spec.storage.pool;
    const media = await this.media.ensure(ctx.hypervisor, mediaPool, urls);
    if (media.state === 'pending') return wait(R.PreparingInstall, media.message, media.requeueAfterMs);
    if (media.state === 'failed')
      return wait(
        R.InstallMediaFailed,
        `${media.message} (host ${ctx.hypervisor.uri}); retrying`,
        media.requeueAfterMs,
      );

    const token = server.issue(uid);
    const url = server.urlFor(uid, token);
    const cmdline = installerCmdline(profile.spec, url);
    let domainPlan: InstallerDomain;
    let pxeState: Session['pxe'];
    if (pxe) {
      const installer = pxeInstallerSpec(vm, placedType(draft.status), this.pxe.settings.network);
      const claim = `${ctx.hypervisor.uri} ${installer.mac}`;
      // Claimed in this process (an install starting now) or, per the cluster, under way.
      const holder = this.macs.get(claim);
      const listed = pxeMacHolder(
        this.options.vms.list(),
        uid,
        draft.status.host ?? '',
        installer.mac,
        this.pxe.settings.network,
      );
      const other =
        holder !== undefined && holder !== uid
          ? (this.sessions.get(holder)?.key ?? holder)
          : listed
            ? objectKey(listed as VmObject)
            : undefined;
      if (other !== undefined) {
        server.revoke(uid);
        return wait(
          R.InstallMacInUse,
          `VM ${other} installs on this host with the same MAC ${installer.mac} (spec.networks[].macAddress); the install starts once that one ends, or give this VM another MAC`,
          30_000,
        );
      }
      this.macs.set(claim, uid);
      try {
        await this.pxe.writeScript(ctx.hypervisor, installer.mac, {
          kernel: baseName(media.kernel),
          initrd: baseName(media.initrd),
          cmdline,
        });
      } catch (error) {
        this.macs.delete(claim);
        server.revoke(uid);
        if (isHypervisorError(error, 'unreachable')) throw error;
        return wait(
          R.InstallMediaFailed,
          `cannot write the iPXE script of MAC ${installer.mac} into storage pool ${this.pxe.settings.pool} (host ${ctx.hypervisor.uri}): ${(error as Error).message}; retrying`,
          30_000,
        );
      }
      domainPlan = { spec: { ...installer.spec, kernelBoot: undefined }, bootDevice: 'network' };
      pxeState = { hypervisor: ctx.hypervisor, mac: installer.mac };
    } else {
      domainPlan = { spec: { kernelBoot: { kernel: media.kernel, initrd: media.initrd, cmdline } } };
    }
    const now = Date.now();
    const timeoutMs = this.options.timeoutMs ?? profile.spec.timeoutMinutes * 60_000;
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
    this.sessions.set(uid, session);
    // Dropped first: the new condition's lastTransitionTime is the start the timeout counts from.
    draft.drop(C.Installed);
    this.setInstalling(draft, session);
    draft.phase('Installing');
    const how = pxe
      ? `by PXE on network ${this.pxe.settings.network} (MAC ${pxeState?.mac ?? ''})`
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
      requeueAfterMs: timeoutMs,
    };
  }

  /** An install under way: finished, failed, timed out, or still going. */
  private async drive(ctx: InstallContext, session: Session, domain: DomainStatus | undefined): Promise<InstallPlan> {
    const { vm, draft, hypervisor } = ctx;
    const uid = vm.metadata.uid ?? '';
    const now = Date.now();
    const stillInstalling = (): InstallPlan => {
      this.setInstalling(draft, session);
      return {
        kind: 'install',
        domain: session.domain,
        startNow: false,
        requeueAfterMs: Math.max(session.deadline - now, 1),
      };
    };
    if (!domain) return stillInstalling(); // defined again by the reconciler
    if (isActive(domain.state)) {
      session.interrupted = false;
      if (now < session.deadline) return stillInstalling();
      await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
      return this.fail(
        ctx,
        R.InstallTimedOut,
        `the installer did not power the VM off within ${minutes(session.deadline - session.startedAt)}; destroyed. See its serial console log for why`,
      );
    }
    if (this.stopAsked(ctx)) session.interrupted = true;
    if (!session.interrupted && domain.reason === 'shutdown') {
      this.end(uid);
      const took = minutes(now - session.startedAt);
      draft.set(
        C.Installed,
        'True',
        R.Installed,
        `InstallProfile ${session.profile} installed in ${took}; the VM boots from its disk`,
      );
      ctx.event(
        'Normal',
        E.Installed,
        `the installer powered the VM off after ${took}: installed; redefined to boot from its disk`,
      );
      const held = vm.spec.runStrategy === 'Halted' || vm.metadata.annotations?.[ACTION_ANNOTATION] === 'stop';
      return { kind: 'installed', startNow: !held };
    }
    // 'failed': the host could not start it at all (QEMU refused the definition, a missing file):
    // starting it again would fail again, as fast as the controller could try.
    if (
      !session.interrupted &&
      (domain.state === 'crashed' ||
        domain.reason === 'crashed' ||
        domain.reason === 'destroyed' ||
        domain.reason === 'failed')
    ) {
      return this.fail(
        ctx,
        R.InstallFailed,
        `the installer stopped (${domain.state}, ${domain.reason}) before the install finished; see its serial console log`,
      );
    }
    if (now >= session.deadline)
      return this.fail(
        ctx,
        R.InstallTimedOut,
        `the install did not finish within ${minutes(session.deadline - session.startedAt)}`,
      );
    return stillInstalling();
  }

  /** After a controller restart: the install under way, from the domain's definition on the host. */
  private async resume(ctx: InstallContext, installed: Condition | undefined): Promise<Session | undefined> {
    const { vm, hypervisor } = ctx;
    const uid = vm.metadata.uid ?? '';
    const server = this.options.server;
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
    const mac = domainPlan ? undefined : pxeMacInDomain(xml, this.pxe.settings.network);
    if (mac) {
      const script = await this.pxe.readScript(hypervisor, mac);
      if (script) {
        cmdline = script.cmdline;
        const installer = pxeInstallerSpec(vm, placedType(ctx.draft.status), this.pxe.settings.network);
        domainPlan = { spec: { ...installer.spec, kernelBoot: undefined }, bootDevice: 'network' };
        pxeState = { hypervisor, mac };
        this.macs.set(`${hypervisor.uri} ${mac}`, uid);
      }
    }
    const token = cmdline ? tokenInCmdline(cmdline, uid) : undefined;
    if (!domainPlan || !cmdline || !token || !server.adopt(uid, token)) return undefined;
    const namespace = vm.metadata.namespace ?? '';
    const profileName = vm.spec.install!.profileRef.name;
    const profile = this.options.profiles?.get(`${namespace}/${profileName}`);
    const startedAt = installed ? Date.parse(installed.lastTransitionTime) : Date.now();
    const timeoutMs = this.options.timeoutMs ?? (profile ? profile.spec.timeoutMinutes * 60_000 : DEFAULT_TIMEOUT_MS);
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
    this.sessions.set(uid, session);
    this.options.logger.info(
      { vm: objectKey(vm), kickstart: session.shownUrl },
      'install under way taken up from the domain definition',
    );
    return session;
  }

  private setInstalling(draft: VmStatusDraft, session: Session): void {
    draft.set(
      C.Installed,
      'False',
      R.Installing,
      `installing InstallProfile ${session.profile}: the installer boots ${session.method === 'pxe' ? `by PXE (network ${this.pxe.settings.network})` : 'directly'} and fetches its Kickstart from ${session.shownUrl}; ` +
        `it fails if the VM has not powered off by ${new Date(session.deadline).toISOString()}`,
    );
  }

  private fail(ctx: InstallContext, reason: string, message: string): InstallPlan {
    const { vm, draft } = ctx;
    this.end(vm.metadata.uid ?? '');
    draft.phase('Failed');
    draft.set(
      C.Installed,
      'False',
      reason,
      `${message}; \`virtfleet vm restart ${vm.metadata.name ?? ''}\` starts the install again`,
    );
    draft.set(C.Ready, 'False', reason, 'the install failed (see Installed)');
    ctx.event('Warning', reason === R.InstallTimedOut ? E.InstallTimedOut : E.InstallFailed, message);
    return { kind: 'failed' };
  }

  /** A stop the controller was asked for: runStrategy Halted, `virtfleet vm stop`, a restart under way. */
  private stopAsked(ctx: InstallContext): boolean {
    const { vm, draft } = ctx;
    const last = draft.status.lastAction;
    return (
      ctx.shutdownAsked ||
      vm.spec.runStrategy === 'Halted' ||
      vm.metadata.annotations?.[ACTION_ANNOTATION] === 'stop' ||
      (last?.state === 'InProgress' && last.action === 'restart')
    );
  }

  private end(uid: string): void {
    const session = this.sessions.get(uid);
    this.sessions.delete(uid);
    this.options.server?.revoke(uid);
    const pxe = session?.pxe;
    if (pxe && this.macs.get(`${pxe.hypervisor.uri} ${pxe.mac}`) === uid)
      this.macs.delete(`${pxe.hypervisor.uri} ${pxe.mac}`);
    if (pxe) {
      // The token is revoked already; the script that carries it goes too (best effort: a
      // script left behind names a revoked token, and the next install of the MAC replaces it).
      this.pxe.deleteScript(pxe.hypervisor, pxe.mac).catch((error: unknown) => {
        this.options.logger.warn(
          { vm: session.key, host: pxe.hypervisor.uri, mac: pxe.mac, err: error },
          'cannot delete the iPXE script of an ended install',
        );
      });
    }
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  // ---- serving --------------------------------------------------------------------------------

  /** The Kickstart of an installing VM, rendered now from its profile and the profile's Secrets. */
  private async serve(uid: string, client: string): Promise<KickstartAnswer> {
    const session = this.sessions.get(uid);
    const vm = session ? this.options.vms.get(session.key) : undefined;
    if (!session || !vm || vm.metadata.uid !== uid || isBeingDeleted(vm) || !vm.spec.install) return { status: 'gone' };
    const namespace = vm.metadata.namespace ?? '';
    const name = vm.spec.install.profileRef.name;
    const profile = this.options.profiles?.get(`${namespace}/${name}`);
    if (!profile) {
      this.options.event(
        vm,
        'Warning',
        E.KickstartUnavailable,
        `the installer at ${client} asked for its Kickstart, but InstallProfile ${namespace}/${name} does not exist any more`,
      );
      return { status: 'unavailable' };
    }
    const result = await renderProfile(
      { namespace, name, spec: profile.spec },
      secretLookup(this.options.client, namespace),
      this.memo,
    );
    if (!result.ok) {
      this.options.event(
        vm,
        'Warning',
        E.KickstartUnavailable,
        `the installer at ${client} asked for its Kickstart, but InstallProfile ${namespace}/${name} does not render: ${problemsMessage(result.problems)}`,
      );
      return { status: 'unavailable' };
    }
    this.options.event(
      vm,
      'Normal',
      E.KickstartServed,
      `Kickstart of InstallProfile ${namespace}/${name} (${result.hash}) served to ${client}`,
    );
    return { status: 'ok', text: result.text };
  }
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function minutes(ms: number): string {
  const m = ms / 60_000;
  return m >= 1 ? `${Math.round(m)} min` : `${Math.round(ms / 1000)} s`;
}
