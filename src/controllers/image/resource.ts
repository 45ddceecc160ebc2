// The VirtualMachineImage resource as the image controller sees it: its type, its finalizer, its
// condition reasons and Event reasons, and the name of its volume in a storage pool.
import { createHash } from 'node:crypto';
import { GROUP, VERSION } from '../../api/common.js';
import type { VirtualMachineImage } from '../../api/virtualmachineimage.js';
import type { KubeObject, ResourceType } from '../../runtime/kube-client.js';

export const VIRTUAL_MACHINE_IMAGE: ResourceType = {
  kind: 'VirtualMachineImage',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachineimages',
  namespaced: true,
};

export type ImageObject = VirtualMachineImage & KubeObject;

/** Held on every image until its volumes are deleted; deletion waits while VMs use the image. */
export const IMAGE_FINALIZER = 'virtfleet.io/image-volumes';

export const IMAGE_REASONS = {
  Imported: 'Imported',
  Importing: 'Importing',
  Pending: 'Pending',
  HostPoolNotFound: 'HostPoolNotFound',
  HostNotReady: 'HostNotReady',
  DownloadFailed: 'DownloadFailed',
  ChecksumMismatch: 'ChecksumMismatch',
  UnsupportedFormat: 'UnsupportedFormat',
  SourceVolumeNotFound: 'SourceVolumeNotFound',
  ImportFailed: 'ImportFailed',
  InUse: 'InUse',
  WaitingForUpload: 'WaitingForUpload',
  UploadFailed: 'UploadFailed',
  UploadIncomplete: 'UploadIncomplete',
} as const;

export const IMAGE_EVENTS = {
  Imported: 'Imported',
  ImportFailed: 'ImportFailed',
  DeletionBlocked: 'DeletionBlocked',
  VolumesDeleted: 'VolumesDeleted',
} as const;

/**
 * The image's volume in a storage pool: `vfi-<namespace>_<name>`. VM volumes start `vf-`, so the
 * two never meet; `_` is in neither a namespace nor a name. A long name is shortened by a hash,
 * as file names end at 255 bytes.
 */
export function imageVolumeName(namespace: string, name: string): string {
  const plain = `vfi-${namespace}_${name}`;
  if (plain.length <= 200) return plain;
  return `vfi-${namespace}_${name.slice(0, 100)}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/** What the imported volumes were made from: a change of it means new volumes. */
export function sourceFingerprint(image: ImageObject): string {
  const { source, hostPoolRef } = image.spec;
  const parts: unknown[] = [source.url ?? null, source.sha256 ?? null, source.volume ?? null, hostPoolRef.name];
  // Appended only when set, so the fingerprints of url and volume images stay as they were.
  if (source.upload) parts.push('upload');
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}
