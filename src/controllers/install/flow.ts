// The install step of the VirtualMachine controller, for VMs with spec.install.profileRef.
//
//   the profile is Valid, the install endpoint listens, the installer's kernel and initrd are on
//   the host (media.ts)
//     → a token is issued, the domain is defined to boot the installer:
//       spec.boot.method kernel: directly, <kernel>/<initrd> from the HostPool's storage pool,
//         <cmdline>inst.ks=<url> inst.text …;
//       spec.boot.method pxe (pxe.ts): from the network, its one NIC on the host's
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
// after its power steps. The files beside this one: start.ts (starting an install), progress.ts
// (an install under way, its end and its timeout), resume.ts (after a controller restart),
// kickstart.ts (serving the Kickstart), sessions.ts, media.ts, pxe.ts, types.ts.
import { ignoring, type DomainStatus } from '../../hypervisors/hypervisor.js';
import { HashMemo } from '../../provisioning/profile-secrets.js';
import type { VirtualMachineCondition } from '../../api/conditions.js';
import { findCondition } from '../../runtime/conditions.js';
import { objectKey, type Informer } from '../../runtime/informer.js';
import { watchMapped, type Source } from '../../runtime/sources.js';
import { untilAborted } from '../../runtime/abort.js';
import type { ProfileObject } from '../installprofile.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { VmObject } from '../resources.js';
import { isActive } from '../run-strategy.js';
import { ACTION_ANNOTATION, actionRequest, heldBy, isNewRequest } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import { serveKickstart } from './kickstart.js';
import { InstallMedia } from './media.js';
import { driveInstall } from './progress.js';
import { PxeHosts } from './pxe.js';
import { resumeInstall } from './resume.js';
import { InstallSessions } from './sessions.js';
import { startInstall } from './start.js';
import type { InstallContext, InstallFlowOptions, InstallKit, InstallPlan } from './types.js';

export type { InstallContext, InstallerDomain, InstallFlowOptions, InstallPlan, KernelBoot } from './types.js';

/** Installed=False reasons from which `virtfleet vm start|restart` starts an install. */
const RETRYABLE = new Set<string>([R.InstallTimedOut, R.InstallFailed, R.InstallNotStarted]);
/** Phases of a VM whose domain has run: an install added later is not started behind the user's back. */
const RAN = new Set(['Running', 'Stopped', 'Paused', 'CrashLoopBackOff', 'Migrating']);

export class InstallFlow {
  private readonly kit: InstallKit;
  private readonly changeListeners = new Set<() => void>();

  constructor(private readonly options: InstallFlowOptions) {
    const pxe = new PxeHosts(options.pxe);
    this.kit = {
      options,
      pxe,
      media: options.media ?? new InstallMedia({ onJobEnd: () => this.changed() }),
      sessions: new InstallSessions(pxe, options.logger, options.server),
      memo: new HashMemo(),
      now: options.now ?? Date.now,
    };
    options.server?.serveFrom((uid, client) => serveKickstart(this.kit, uid, client));
    options.server?.onStateChange(() => this.changed());
  }

  /** What to do with the VM's install (and its boot) in this reconcile. */
  async prepare(ctx: InstallContext): Promise<InstallPlan> {
    const { vm, draft } = ctx;
    const uid = vm.metadata.uid ?? '';
    const installed = draft.condition(C.Installed);
    if (!vm.spec.install) {
      this.kit.sessions.end(uid);
      if (installed && installed.status !== 'True') draft.drop(C.Installed);
      return { kind: 'none' };
    }
    if (installed?.status === 'True') {
      this.kit.sessions.end(uid);
      return { kind: 'none' };
    }
    const request = this.startRequest(vm, draft);
    const retry = installed?.status === 'False' && RETRYABLE.has(installed.reason) ? request : undefined;
    if (installed?.status === 'False' && RETRYABLE.has(installed.reason) && !retry) {
      if (installed.reason === R.InstallNotStarted) return { kind: 'none' };
      return this.holdFailed(vm, draft, installed);
    }
    const domain = await ctx.hypervisor.lookup(uid);
    let session = retry ? undefined : this.kit.sessions.get(uid);
    if (!session && !retry && domain && (!installed || installed.reason === R.Installing))
      session = await resumeInstall(this.kit, ctx, installed);
    if (session) return driveInstall(this.kit, ctx, session, domain);

    if (!retry && !installed && domain && RAN.has(draft.status.phase ?? '')) {
      draft.set(
        C.Installed,
        'False',
        R.InstallNotStarted,
        'spec.install was set on a VM that has run already; it is not reinstalled behind your back: ' +
          `\`virtfleet vm restart ${vm.metadata.name ?? ''}\` installs it (erasing its disks as the profile says)`,
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
      // Stopped as asked (kstatus.ts): Ready=True, as for any VM its runStrategy or a hold keeps stopped.
      draft.set(C.Ready, 'True', R.Stopped, 'not started yet; the install starts with it (see Installed)');
      return { kind: 'wait' };
    }
    const plan = await startInstall(this.kit, ctx, domain, retry);
    if (retry && plan.kind === 'install') {
      ctx.recordAction({
        id: retry.id,
        action: retry.action,
        state: 'Succeeded',
        message: `the install of InstallProfile ${this.kit.sessions.get(uid)?.profile ?? ''} starts again`,
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
    const session = this.kit.sessions.get(vm.metadata.uid ?? '');
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
    this.kit.sessions.end(uid);
  }

  /** Enqueues VMs whose install waits for a profile, the endpoint or a download. */
  source(profiles: Informer<ProfileObject> | undefined): Source[] {
    const { vms } = this.options;
    const waiting = () =>
      vms
        .list()
        .filter((vm) => vm.spec.install && findCondition(vm.status?.conditions, C.Installed)?.status !== 'True');
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
    if (!isNewRequest(request, draft.status.lastAction)) return undefined;
    return { id: request.id, action: request.action };
  }

  private holdFailed(vm: VmObject, draft: VmStatusDraft, installed: VirtualMachineCondition): InstallPlan {
    draft.phase('Failed');
    draft.set(
      C.Ready,
      'False',
      installed.reason,
      `the install failed (see Installed); \`virtfleet vm restart ${vm.metadata.name ?? ''}\` starts it again`,
    );
    return { kind: 'failed' };
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }
}
