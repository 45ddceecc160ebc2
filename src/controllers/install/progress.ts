// An install under way: the installer powered the VM off (installed), it crashed or was
// destroyed (InstallFailed), or the timeout passed (InstallTimedOut: destroyed); otherwise it
// goes on, and the reconciler looks again every INSTALL_LOOK_MS and at the deadline.
import { ignoring, type DomainStatus } from '../../hypervisors/hypervisor.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import { isActive } from '../run-strategy.js';
import { ACTION_ANNOTATION } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import { installerLogHint } from './serial-log.js';
import {
  INSTALL_LOOK_MS,
  minutes,
  type InstallContext,
  type InstallKit,
  type InstallPlan,
  type Session,
} from './types.js';

/** An install under way: finished, failed, timed out, or still going. */
export async function driveInstall(
  kit: InstallKit,
  ctx: InstallContext,
  session: Session,
  domain: DomainStatus | undefined,
): Promise<InstallPlan> {
  const { vm, draft, hypervisor } = ctx;
  const uid = vm.metadata.uid ?? '';
  const now = kit.now();
  const log = () =>
    installerLogHint(draft.status.domainName ?? '', draft.status.hypervisor, vm.spec.xen?.mode, hypervisor.uri);
  const stillInstalling = (): InstallPlan => {
    setInstalling(kit, draft, session);
    return {
      kind: 'install',
      domain: session.domain,
      startNow: false,
      requeueAfterMs: Math.max(Math.min(session.deadline - now, INSTALL_LOOK_MS), 1),
    };
  };
  if (!domain) return stillInstalling(); // defined again by the reconciler
  if (isActive(domain.state)) {
    session.interrupted = false;
    if (now < session.deadline) return stillInstalling();
    await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
    return failInstall(
      kit,
      ctx,
      R.InstallTimedOut,
      `the installer did not power the VM off within ${minutes(session.deadline - session.startedAt)}; destroyed. For why: ${log()}`,
    );
  }
  if (stopAsked(ctx)) session.interrupted = true;
  if (!session.interrupted && domain.reason === 'shutdown') {
    kit.sessions.end(uid);
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
    return failInstall(
      kit,
      ctx,
      R.InstallFailed,
      `the installer stopped (${domain.state}, ${domain.reason}) before the install finished; ${log()}`,
    );
  }
  if (now >= session.deadline)
    return failInstall(
      kit,
      ctx,
      R.InstallTimedOut,
      `the install did not finish within ${minutes(session.deadline - session.startedAt)}`,
    );
  return stillInstalling();
}

export function setInstalling(kit: InstallKit, draft: VmStatusDraft, session: Session): void {
  draft.set(
    C.Installed,
    'False',
    R.Installing,
    `installing InstallProfile ${session.profile}: the installer boots ` +
      `${session.method === 'pxe' ? `by PXE (network ${kit.pxe.settings.network})` : 'directly'} ` +
      `and fetches its Kickstart from ${session.shownUrl}; ` +
      `it fails if the VM has not powered off by ${new Date(session.deadline).toISOString()}`,
  );
}

export function failInstall(kit: InstallKit, ctx: InstallContext, reason: string, message: string): InstallPlan {
  const { vm, draft } = ctx;
  kit.sessions.end(vm.metadata.uid ?? '');
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
function stopAsked(ctx: InstallContext): boolean {
  const { vm, draft } = ctx;
  const last = draft.status.lastAction;
  return (
    ctx.shutdownAsked ||
    vm.spec.runStrategy === 'Halted' ||
    vm.metadata.annotations?.[ACTION_ANNOTATION] === 'stop' ||
    (last?.state === 'InProgress' && last.action === 'restart')
  );
}
