// Step: the cut. One VM is captured as is (libvirt pauses it for the moment of a memory
// snapshot). A group is one consistent cut across hosts:
//
//   freeze filesystems (disk-only, where an agent answers)
//   → pause every running VM, in parallel across hosts: a barrier, all paused before any capture
//   → capture each, in parallel → resume the ones paused here → thaw
// (On one host too: the binding runs pause, snapshot create and resume as side jobs, beside the
// connection's one-at-a-time queue, docs/libvirt-binding.md.)
//
// While all are paused no VM runs, so no message a VM received before its capture can have been
// sent after its sender's capture: the cut is consistent (Chandy–Lamport's condition, reached by
// stopping the world instead of markers). Packets in flight during the pause are not captured;
// after a restore they are lost like in a network blip, and TCP sends them again.
//
// If a pause fails, the VMs paused so far are resumed and nothing is captured. If a capture
// fails, the others' snapshots are deleted again: a group snapshot is whole or absent.
import { channel } from 'node:diagnostics_channel';
import type { SnapshotInfo } from '../../hypervisors/hypervisor.js';
import { ignoring } from '../../hypervisors/hypervisor.js';
import { captureVm, domainActive, freezeGuest, thawGuest, type CaptureRequest, type Captured } from './capture.js';
import type { Member } from './members.js';
import { SNAPSHOT_REASONS as R } from './types.js';

/** One step of a cut, published on CUT_CHANNEL as it happens (tests check the order; benches time it). */
export interface CutStep {
  /** The libvirt snapshot name (one per snapshot object). */
  snapshot: string;
  step: 'pause' | 'capture' | 'captured' | 'resume';
  vm: string;
}

/** node:diagnostics_channel name of the cut's steps; nothing is published without a subscriber. */
export const CUT_CHANNEL = 'virtfleet:snapshot-cut';
const cutChannel = channel(CUT_CHANNEL);

export interface CutOptions {
  /** Pause every VM before capturing any (a group); false for one VM. */
  barrier: boolean;
  /** Milliseconds, for the pause window (performance.now() by default). */
  now?: () => number;
}

export type CutResult =
  | { ok: true; captured: Captured[]; pauseWindowMs: number | undefined; warnings: string[] }
  | { ok: false; reason: string; message: string };

const nameOf = (member: Member) => member.vm.metadata.name ?? '';
const uidOf = (member: Member) => member.vm.metadata.uid ?? '';

export async function takeCut(
  members: readonly Member[],
  request: CaptureRequest,
  options: CutOptions,
): Promise<CutResult> {
  const now = options.now ?? (() => performance.now());
  const trace = (step: CutStep['step'], vm: string) => {
    if (cutChannel.hasSubscribers) cutChannel.publish({ snapshot: request.name, step, vm } satisfies CutStep);
  };
  const states = await Promise.all(members.map(domainActive));
  const frozen = await Promise.all(
    members.map((member, i) => (!request.memory && states[i]!.active ? freezeGuest(member) : Promise.resolve(false))),
  );
  const thawAll = () =>
    Promise.all(members.map((member, i) => (frozen[i] ? thawGuest(member) : Promise.resolve(undefined))));

  // The barrier: VMs already paused (by their user) stay as they are, before and after.
  const toPause = options.barrier ? members.filter((_, i) => states[i]!.active && !states[i]!.paused) : [];
  const started = now();
  const paused: Member[] = [];
  const pauseErrors = await Promise.all(
    toPause.map(async (member) => {
      try {
        await member.hypervisor.suspend(uidOf(member));
        paused.push(member);
        trace('pause', nameOf(member));
        return undefined;
      } catch (error) {
        return `${nameOf(member)}: ${(error as Error).message}`;
      }
    }),
  );
  const resumeAll = async (): Promise<string[]> => {
    const failures = await Promise.all(
      paused.map(async (member) => {
        try {
          await ignoring(['invalid-state'], () => member.hypervisor.resume(uidOf(member)));
          trace('resume', nameOf(member));
          return undefined;
        } catch (error) {
          return `resuming ${nameOf(member)} failed: ${(error as Error).message}`;
        }
      }),
    );
    return failures.filter((f): f is string => f !== undefined);
  };
  const failedPauses = pauseErrors.filter((e): e is string => e !== undefined);
  if (failedPauses.length > 0) {
    const resumeFailures = await resumeAll();
    await thawAll();
    return {
      ok: false,
      reason: R.PauseFailed,
      message:
        `pausing the group failed, so nothing was captured and the ${paused.length} VM(s) paused were resumed: ` +
        `${failedPauses.join('; ')}${resumeFailures.length ? `; ${resumeFailures.join('; ')}` : ''}; ` +
        'fix the host or VM named, then create the snapshot again',
    };
  }

  const results = await Promise.allSettled(
    members.map(async (member, i) => {
      trace('capture', nameOf(member));
      const captured = await captureVm(member, request, states[i]!.active, frozen[i]!);
      trace('captured', nameOf(member));
      return captured;
    }),
  );
  const resumeFailures = await resumeAll();
  const pauseWindowMs = options.barrier ? Math.max(0, Math.round(now() - started)) : undefined;
  const thawFailures = (await thawAll()).filter((f): f is string => f !== undefined);
  const warnings = [...resumeFailures, ...thawFailures];

  const failed = results
    .map((result, i) => (result.status === 'rejected' ? `${nameOf(members[i]!)}: ${String(result.reason)}` : undefined))
    .filter((f): f is string => f !== undefined);
  if (failed.length > 0) {
    // Whole or absent: what was captured of the others goes again.
    await Promise.all(
      members.map((member, i) =>
        results[i]!.status === 'fulfilled'
          ? member.hypervisor.deleteSnapshot(uidOf(member), request.name).catch(() => false)
          : Promise.resolve(false),
      ),
    );
    return {
      ok: false,
      reason: R.CaptureFailed,
      message: `capturing failed: ${failed.join('; ')}${warnings.length ? `; ${warnings.join('; ')}` : ''}; fix what is named, then create the snapshot again`,
    };
  }
  const captured = results.map((result) => (result as PromiseFulfilledResult<Captured>).value);
  return { ok: true, captured, pauseWindowMs, warnings };
}

/**
 * The Lamport clock value of a new cut over `vmUids`: one more than that of every earlier cut
 * sharing a VM with it. Each VM is a process whose clock is its latest cut's; a cut is an event
 * on all its VMs at once, so it takes their maximum plus one, and cuts of overlapping groups are
 * totally ordered by it.
 */
export function nextLogicalClock(
  earlier: ReadonlyArray<{ vmUids: readonly string[]; clock: number }>,
  vmUids: readonly string[],
): number {
  const members = new Set(vmUids);
  let max = 0;
  for (const cut of earlier) if (cut.vmUids.some((uid) => members.has(uid))) max = Math.max(max, cut.clock);
  return max + 1;
}

/** The snapshot's time as status records it. */
export function capturedAt(info: SnapshotInfo, fallback: Date): Date {
  return info.createdAt.getTime() > 0 ? info.createdAt : fallback;
}
