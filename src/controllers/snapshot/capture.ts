// Step: capture one VM on its host as an internal snapshot, with the RAM state or the disks only.
//
// libvirt 9.0's QEMU driver takes an internal snapshot of a running domain only with its memory
// ("internal snapshot of a running VM must include the memory state"). A disk-only snapshot of a
// running VM is therefore taken as the host can take it, with the RAM inside, and recorded as
// disk-only (memory: false): a restore discards that RAM and boots the guest from the disks.
// Before it, the guest agent freezes the filesystems when it answers (Quiesced); without an
// agent the disks are as after a power cut (CrashConsistent).
import type { SnapshotConsistency } from '../../api/virtualmachinesnapshot.js';
import { isHypervisorError, type SnapshotInfo } from '../../hypervisors/hypervisor.js';
import { isActive } from '../run-strategy.js';
import type { Member } from './members.js';

/** How long the guest agent may take to answer a freeze or thaw. */
export const AGENT_TIMEOUT_SECONDS = 5;

export interface CaptureRequest {
  /** The libvirt snapshot name (the same on every host). */
  name: string;
  description: string;
  /** spec.memory. */
  memory: boolean;
}

export interface Captured {
  memory: boolean;
  consistency: SnapshotConsistency;
  info: SnapshotInfo;
}

/**
 * Freezes the guest's filesystems when its agent answers; true when it did. Any failure (no
 * agent, not connected, a timeout) means crash-consistent, never an error.
 */
export async function freezeGuest(member: Member): Promise<boolean> {
  try {
    await member.hypervisor.guestFsFreeze(member.vm.metadata.uid ?? '', AGENT_TIMEOUT_SECONDS);
    return true;
  } catch {
    return false;
  }
}

/** Thaws a frozen guest; a failure is returned as text for the status, never thrown. */
export async function thawGuest(member: Member): Promise<string | undefined> {
  try {
    await member.hypervisor.guestFsThaw(member.vm.metadata.uid ?? '', AGENT_TIMEOUT_SECONDS);
    return undefined;
  } catch (error) {
    return `thawing the filesystems of ${member.vm.metadata.name ?? ''} failed: ${(error as Error).message}`;
  }
}

/**
 * Takes the snapshot of one VM. `active` is whether its domain runs (or is paused); `quiesced`
 * whether its filesystems were frozen for a disk-only capture.
 */
export async function captureVm(
  member: Member,
  request: CaptureRequest,
  active: boolean,
  quiesced: boolean,
): Promise<Captured> {
  const uid = member.vm.metadata.uid ?? '';
  const hostMemory = active; // see the head of this file: a running domain's internal snapshot has its RAM
  let info: SnapshotInfo;
  try {
    info = await member.hypervisor.createSnapshot(uid, {
      name: request.name,
      description: request.description,
      memory: hostMemory,
    });
  } catch (error) {
    // A retry after the host took it but the answer was lost: the snapshot is there.
    if (!isHypervisorError(error, 'already-exists')) throw error;
    const existing = await member.hypervisor.snapshot(uid, request.name);
    if (!existing) throw error;
    info = existing;
  }
  if (!active) return { memory: false, consistency: 'Stopped', info };
  if (request.memory) return { memory: true, consistency: 'Memory', info };
  return { memory: false, consistency: quiesced ? 'Quiesced' : 'CrashConsistent', info };
}

/** Whether the VM's domain is active (running or paused) on its host now. */
export async function domainActive(member: Member): Promise<{ active: boolean; paused: boolean }> {
  const domain = await member.hypervisor.state(member.vm.metadata.uid ?? '');
  return { active: isActive(domain.state), paused: domain.state === 'paused' || domain.state === 'pmsuspended' };
}
