// VirtualMachineImage: a disk image imported once into a HostPool's storage (on each host, or
// once when the pool's storage is shared), for VM disks to start from (spec.disks[].source.image.name).
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  AGE_COLUMN,
  HTTP_URL,
  LIBVIRT_NAME,
  conditionColumn,
  conditions,
  definePattern,
  dnsLabel,
  int,
  localObjectReference,
  matching,
  namedList,
  obj,
  oneOf,
  str,
  type ResourceDefinition,
} from './common.js';
import { celExactlyOne, countSet, withRules } from './rules.js';

export const IMAGE_PHASES = ['Pending', 'Importing', 'Ready', 'Failed', 'Deleting'] as const;
export const IMAGE_FORMATS = ['qcow2', 'raw', 'iso'] as const;
export const UPLOAD_STATES = ['Receiving', 'Uploading', 'Done', 'Failed'] as const;

const SHA256 = definePattern(
  '^[a-f0-9]{64}$',
  64,
  (v) => `${JSON.stringify(v)} is not a sha256 (64 lowercase hex digits, as sha256sum prints them)`,
);

const ImageSource = withRules(
  obj('Where the image comes from: set url (with sha256), upload or volume.', {
    url: Type.Optional(
      matching('http:// or https:// URL to download the image from (redirects are followed).', HTTP_URL),
    ),
    sha256: Type.Optional(
      matching(
        'Expected sha256 of the downloaded bytes (64 lowercase hex digits); required with url. A mismatch fails the import and keeps nothing.',
        SHA256,
      ),
    ),
    upload: Type.Optional(
      obj(
        'The content is uploaded through the API server: `virtfleet image upload NAME --file FILE` (subresource virtualmachineimages/upload of subresources.virtfleet.io). Set it to {}.',
        {},
      ),
    ),
    volume: Type.Optional(
      obj('An existing volume in a libvirt storage pool on each host, copied into the image.', {
        name: matching('Name of the volume.', LIBVIRT_NAME),
        pool: Type.Optional(
          matching("Storage pool of that volume; defaults to the HostPool's spec.storage.pool.", LIBVIRT_NAME),
        ),
      }),
    ),
  }),
  [
    {
      id: 'vmimage-one-source',
      cel: celExactlyOne(['url', 'upload', 'volume']),
      message: 'set exactly one of url, upload or volume',
      holds: (source) => countSet(source, ['url', 'upload', 'volume']) === 1,
    },
    {
      id: 'vmimage-url-needs-sha256',
      cel: '!has(self.url) || has(self.sha256)',
      message: 'a url needs its sha256: add sha256 (the output of sha256sum for the file)',
      fieldPath: '.sha256',
      reason: 'FieldValueRequired',
      holds: (source) => source.url === undefined || source.sha256 !== undefined,
    },
    {
      id: 'vmimage-sha256-only-with-url',
      cel: '!has(self.sha256) || has(self.url)',
      message: 'sha256 checks a download: remove it, or set url',
      fieldPath: '.sha256',
      reason: 'FieldValueForbidden',
      holds: (source) => source.sha256 === undefined || source.url !== undefined,
    },
  ],
);

export const VirtualMachineImageSpecSchema = obj('The image wanted: its source and the pool to hold it.', {
  source: ImageSource,
  hostPoolRef: localObjectReference(
    'The HostPool whose hosts get the image, in its spec.storage.pool.',
    'Name of the HostPool (cluster-scoped).',
  ),
});

const HostImage = obj('The image on one host (or, for shared storage, on the pool).', {
  name: dnsLabel('spec.hosts[].name of the host; for shared storage, the host that imported it.'),
  phase: oneOf('Pending, Importing, Ready or Failed.', IMAGE_PHASES),
  progress: Type.Optional(str('How far the import is, e.g. 42% or 12.0 MiB.', { maxLength: 64 })),
  volume: Type.Optional(matching("The image's volume in the storage pool.", LIBVIRT_NAME, { maxLength: 255 })),
  pool: Type.Optional(matching('The storage pool of the volume.', LIBVIRT_NAME)),
  path: Type.Optional(str('Path of the volume on the host.', { maxLength: 4096 })),
  reason: Type.Optional(str('CamelCase reason when Failed or Pending.', { maxLength: 1024 })),
  message: Type.Optional(str('Why it failed or what it waits for.', { maxLength: 4096 })),
});

const UploadStatus = obj('The last upload through the API server (spec.source.upload), written by `virtfleet api`.', {
  state: oneOf('Receiving (bytes arriving), Uploading (to the hosts), Done, or Failed.', UPLOAD_STATES),
  fingerprint: str('The spec the upload was made for (status.importedSpec of that spec).', { maxLength: 64 }),
  updatedAt: str('When this was last written (RFC 3339): an upload not updated for a minute has stopped.', {
    format: 'date-time',
  }),
  progress: Type.Optional(str('How far the upload is, e.g. 42%.', { maxLength: 64 })),
  format: Type.Optional(oneOf('The format detected from the content.', IMAGE_FORMATS)),
  sizeBytes: Type.Optional(int('Virtual size in bytes.', { format: 'int64', minimum: 0 })),
  sha256: Type.Optional(matching('sha256 of the uploaded bytes.', SHA256)),
  checksumVerified: Type.Optional(
    Type.Boolean({ description: 'Whether the uploader sent a sha256 and the bytes matched it.' }),
  ),
  hosts: Type.Optional(
    Type.Array(dnsLabel('A host whose pool got the image.'), {
      description: 'Hosts whose volume holds the upload (for shared storage, the one that wrote it).',
      maxItems: 100,
    }),
  ),
  reason: Type.Optional(str('CamelCase reason when Failed.', { maxLength: 1024 })),
  message: Type.Optional(str('Why it failed, and what to do.', { maxLength: 4096 })),
});

export const VirtualMachineImageStatusSchema = obj('The observed state of the image, written by the controller.', {
  phase: Type.Optional(oneOf('A one-word summary for humans; conditions carry the details.', IMAGE_PHASES)),
  format: Type.Optional(
    oneOf('The format detected from the content (not the name): qcow2, raw or iso.', IMAGE_FORMATS),
  ),
  sizeBytes: Type.Optional(
    int('Virtual size in bytes (a qcow2 header says it; raw and iso: the file length).', {
      format: 'int64',
      minimum: 0,
    }),
  ),
  sha256: Type.Optional(matching('sha256 of the downloaded bytes, as computed by the controller.', SHA256)),
  checksumVerified: Type.Optional(
    Type.Boolean({ description: 'Whether the downloaded bytes matched spec.source.sha256.' }),
  ),
  shared: Type.Optional(
    Type.Boolean({ description: "The pool's storage is shared (HostPool spec.storage.shared): imported once." }),
  ),
  importedSpec: Type.Optional(
    str('Fingerprint of the spec.source and spec.hostPoolRef the volumes were made from.', { maxLength: 64 }),
  ),
  hostPool: Type.Optional(matching('The HostPool the volumes are in.', LIBVIRT_NAME, { maxLength: 253 })),
  upload: Type.Optional(UploadStatus),
  hosts: Type.Optional(namedList('The image per host (one entry for shared storage).', HostImage, { maxItems: 100 })),
  conditions: Type.Optional(conditions('Ready (on every host of the pool), and Reconciling or Stalled (kstatus).')),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

export type VirtualMachineImageSpec = Static<typeof VirtualMachineImageSpecSchema>;
export type VirtualMachineImageStatus = Static<typeof VirtualMachineImageStatusSchema>;
export type HostImageStatus = NonNullable<VirtualMachineImageStatus['hosts']>[number];
export type ImageUploadStatus = NonNullable<VirtualMachineImageStatus['upload']>;
export type ImagePhase = (typeof IMAGE_PHASES)[number];
export type ImageFormatName = (typeof IMAGE_FORMATS)[number];

/** A VirtualMachineImage as the API server returns it: defaults applied. */
export interface VirtualMachineImage {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachineImage';
  metadata: V1ObjectMeta;
  spec: VirtualMachineImageSpec;
  status?: VirtualMachineImageStatus;
}

export const virtualMachineImageResource: ResourceDefinition = {
  kind: 'VirtualMachineImage',
  plural: 'virtualmachineimages',
  singular: 'virtualmachineimage',
  listKind: 'VirtualMachineImageList',
  shortNames: ['vmimage'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    "A disk image (qcow2, raw or iso) imported from a URL, an upload or a pool volume into a HostPool's storage, once per host " +
    '(or once for shared storage); VM disks start from it with spec.disks[].source.image.name (a linked clone, or a copy).',
  spec: VirtualMachineImageSpecSchema,
  status: VirtualMachineImageStatusSchema,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: "Summary of the image's state." },
    conditionColumn('Ready', 'Whether the image is on every host of the pool.'),
    {
      name: 'Format',
      type: 'string',
      jsonPath: '.status.format',
      description: 'qcow2, raw or iso (from the content).',
    },
    { name: 'Size', type: 'integer', jsonPath: '.status.sizeBytes', description: 'Virtual size in bytes.' },
    { name: 'Pool', type: 'string', jsonPath: '.spec.hostPoolRef.name', description: 'The HostPool.', priority: 1 },
    { name: 'URL', type: 'string', jsonPath: '.spec.source.url', description: 'The source URL.', priority: 1 },
    AGE_COLUMN,
  ],
};
