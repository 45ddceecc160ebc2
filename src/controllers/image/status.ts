// Step: status. The image's status from its hosts' entries: phase, Ready, and Reconciling or
// Stalled (kstatus.ts) with observedGeneration. Ready is True when every target host has the image.
import type { HostImageStatus, ImagePhase, VirtualMachineImageStatus } from '../../api/virtualmachineimage.js';
import { setCondition } from '../../runtime/conditions.js';
import { withKstatusConditions, type KstatusVerdict } from '../kstatus.js';
import { IMAGE_REASONS as R } from './resource.js';
import type { ImageFacts } from './jobs.js';

export interface ImageStatusInput {
  previous: VirtualMachineImageStatus | undefined;
  generation: number | undefined;
  fingerprint: string;
  hostPool: string;
  shared: boolean;
  hosts: HostImageStatus[];
  facts: ImageFacts | undefined;
  /** Overrides the verdict of the hosts (no pool, deletion waiting, spec changed while in use). */
  blocked?: { reason: string; message: string; phase: ImagePhase };
  now: Date;
}

/** Reasons no retry gets past: the spec or the source must change. */
const NEEDS_A_PERSON: ReadonlySet<string> = new Set([
  R.ChecksumMismatch,
  R.UnsupportedFormat,
  R.DownloadFailed,
  R.SourceVolumeNotFound,
  R.ImportFailed,
  R.InUse,
  R.HostPoolNotFound,
  R.UploadFailed,
  R.UploadIncomplete,
]);

export function imageStatus(input: ImageStatusInput): VirtualMachineImageStatus {
  const { previous, generation, hosts, now } = input;
  const failed = hosts.filter((host) => host.phase === 'Failed');
  const ready = hosts.filter((host) => host.phase === 'Ready');
  const importing = hosts.filter((host) => host.phase === 'Importing');
  let phase: ImagePhase;
  let condition: { status: 'True' | 'False'; reason: string; message: string };
  if (input.blocked) {
    phase = input.blocked.phase;
    condition = { status: 'False', reason: input.blocked.reason, message: input.blocked.message };
  } else if (hosts.length > 0 && ready.length === hosts.length) {
    phase = 'Ready';
    const where = input.shared ? 'the shared storage of the pool' : `${ready.length} of ${hosts.length} hosts`;
    condition = { status: 'True', reason: R.Imported, message: `the image is on ${where}` };
  } else if (failed.length > 0) {
    phase = 'Failed';
    const first = failed[0]!;
    condition = { status: 'False', reason: reasonOf(first), message: first.message ?? 'failed' };
  } else if (importing.length > 0) {
    phase = 'Importing';
    condition = {
      status: 'False',
      reason: R.Importing,
      message: importing.map((host) => `${host.name}: ${host.progress ?? 'starting'}`).join('; '),
    };
  } else {
    phase = 'Pending';
    const waiting = hosts.find((host) => host.phase === 'Pending');
    condition = {
      status: 'False',
      reason: waiting ? (waiting.reason ?? R.HostNotReady) : R.Pending,
      message: waiting?.message ?? 'the HostPool has no hosts',
    };
  }
  let conditions = setCondition(previous?.conditions, { type: 'Ready', ...condition }, generation, now);
  const verdict: KstatusVerdict =
    condition.status === 'True'
      ? { kind: 'done' }
      : NEEDS_A_PERSON.has(condition.reason)
        ? { kind: 'stalled', reason: condition.reason, message: `Ready: ${condition.message}` }
        : { kind: 'reconciling', reason: condition.reason, message: `Ready: ${condition.message}` };
  conditions = withKstatusConditions(conditions, verdict, generation, now);
  const status: VirtualMachineImageStatus = {
    phase,
    ...(input.facts ? { format: input.facts.format, sizeBytes: input.facts.sizeBytes } : {}),
    ...(input.facts?.sha256 ? { sha256: input.facts.sha256, checksumVerified: true } : {}),
    shared: input.shared,
    importedSpec: input.fingerprint,
    hostPool: input.hostPool,
    hosts: [...hosts].sort((a, b) => a.name.localeCompare(b.name)),
    conditions,
  };
  // status.upload is written by `virtfleet api`: kept as it is.
  if (previous?.upload) status.upload = previous.upload;
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}

function reasonOf(host: HostImageStatus): string {
  return host.reason ?? R.ImportFailed;
}
