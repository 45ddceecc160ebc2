// Step: an uploaded image (spec.source.upload). `virtfleet api` receives the bytes, checks them
// and writes each host's volume (src/apiserver/image-upload.ts), reporting in status.upload; the
// controller imports nothing for such an image and never deletes its volumes here (an upload
// may be writing one): it only reads status.upload and the hosts' volumes into host entries.
import type { HostImageStatus, ImageUploadStatus } from '../../api/virtualmachineimage.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import type { ImageFacts } from './jobs.js';
import { IMAGE_REASONS as R } from './resource.js';

/** An upload whose status was not written for this long has stopped (its API server went away). */
export const UPLOAD_STALE_MS = 60_000;

/** Whether an upload is under way now (a fresh Receiving or Uploading). */
export function uploadActive(upload: ImageUploadStatus | undefined, now: number): boolean {
  if (!upload || (upload.state !== 'Receiving' && upload.state !== 'Uploading')) return false;
  return now - Date.parse(upload.updatedAt) < UPLOAD_STALE_MS;
}

/** The upload of this spec (status.upload made for another spec does not count). */
export function currentUpload(
  upload: ImageUploadStatus | undefined,
  fingerprint: string,
): ImageUploadStatus | undefined {
  return upload?.fingerprint === fingerprint ? upload : undefined;
}

/** What the upload found out about the content, for status.format, sizeBytes and sha256. */
export function uploadFacts(upload: ImageUploadStatus | undefined): ImageFacts | undefined {
  if (!upload?.format || upload.sizeBytes === undefined) return undefined;
  return {
    format: upload.format,
    sizeBytes: upload.sizeBytes,
    ...(upload.sha256 && upload.checksumVerified ? { sha256: upload.sha256 } : {}),
  };
}

/** One ready host's entry for an uploaded image. */
export async function uploadedHostEntry(
  at: { name: string; pool: string; volume: string },
  hypervisor: Hypervisor,
  upload: ImageUploadStatus | undefined,
  command: string,
  now: number,
): Promise<HostImageStatus> {
  if (uploadActive(upload, now))
    return { ...at, phase: 'Importing', progress: `${upload!.state.toLowerCase()} ${upload!.progress ?? ''}`.trim() };
  if (upload?.state === 'Failed')
    return {
      ...at,
      phase: 'Failed',
      reason: upload.reason ?? R.UploadFailed,
      message: `${upload.message ?? 'the upload failed'}; upload again: ${command}`,
    };
  if (upload?.state === 'Done' && upload.hosts?.includes(at.name)) {
    const volume = await hypervisor.volume(at.pool, at.volume);
    if (volume) return { ...at, phase: 'Ready', path: volume.path };
    return {
      ...at,
      phase: 'Pending',
      reason: R.WaitingForUpload,
      message: `host ${at.name} no longer has volume ${at.volume}; upload again: ${command}`,
    };
  }
  const why =
    upload?.state === 'Done'
      ? `the upload did not reach host ${at.name} (not ready then, or added to the pool since)`
      : upload
        ? `the upload stopped (${upload.state}, last written ${upload.updatedAt})`
        : 'no content yet';
  return { ...at, phase: 'Pending', reason: R.WaitingForUpload, message: `${why}; upload it: ${command}` };
}

/** The command that uploads the image, for messages. */
export function uploadCommand(namespace: string, name: string): string {
  return `virtfleet image upload ${name} -n ${namespace} --file FILE`;
}
