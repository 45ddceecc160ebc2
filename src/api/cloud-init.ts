// VirtualMachine spec.cloudInit: first-boot configuration for cloud images, given to the guest as
// a NoCloud seed (an ISO 9660 volume labelled cidata; src/provisioning/cloud-init.ts renders it),
// attached read-only as a virtio disk or a CD-ROM (spec.cloudInit.bus).
import { Type } from '@sinclair/typebox';
import { obj, oneOf, secretKeySelector, str } from './common.js';
import { withRules } from './rules.js';

/** Bytes (UTF-8) of user data and of network config, each; the controller checks Secret values against the same. */
export const MAX_CLOUD_INIT_BYTES = 64 * 1024;

function sizedText(description: string, field: string) {
  return withRules(str(description, { maxLength: MAX_CLOUD_INIT_BYTES }), [
    {
      id: `vm-cloud-init-${field}-bytes`,
      // maxLength counts characters; the seed's limit is in bytes.
      cel: `size(bytes(self)) <= ${MAX_CLOUD_INIT_BYTES}`,
      message: `${field} must be at most ${MAX_CLOUD_INIT_BYTES} bytes (UTF-8): put the rest behind #include, or gzip it into write_files`,
      holds: (text) => typeof text !== 'string' || Buffer.byteLength(text, 'utf8') <= MAX_CLOUD_INIT_BYTES,
    },
  ]);
}

export const CloudInit = withRules(
  obj(
    'cloud-init NoCloud data, given to the guest on a read-only volume labelled cidata (files user-data, meta-data, network-config). ' +
      "meta-data is the controller's: instance-id is the VM's UID, local-hostname its name. cloud-init reads it on first boot; " +
      'a change is written at the next reconcile and seen by the guest from its next start; cloud-init acts on most of it only on the first boot of an instance.',
    {
      userData: Type.Optional(
        sizedText(
          'User data, inline: a #cloud-config YAML document (checked to be YAML), a script (#!), or any format cloud-init reads.',
          'userData',
        ),
      ),
      userDataSecretRef: Type.Optional(
        secretKeySelector(
          "User data from a key of a Secret in the VM's namespace (the controller needs get on Secrets there; see docs/images.md). " +
            'Its value is never written to status, Events or logs.',
        ),
      ),
      networkConfig: Type.Optional(
        sizedText(
          'Network configuration, inline: YAML of version 1 or 2 (https://cloudinit.readthedocs.io/en/latest/reference/network-config.html). ' +
            "Without it the guest's cloud-init uses its default (DHCP on the first interface).",
          'networkConfig',
        ),
      ),
      networkConfigSecretRef: Type.Optional(
        secretKeySelector("Network configuration from a key of a Secret in the VM's namespace."),
      ),
      bus: oneOf(
        "How the seed is attached, read-only. virtio (the default): a disk after the VM's disks (vd* on KVM, xvd* on Xen, also Xen PV), " +
          'seen by any kernel with virtio-blk or Xen blkfront, as most cloud kernels are built (many lack AHCI). ' +
          'sata: a CD-ROM on SATA (IDE on Xen HVM; Xen PV has none), for guests without paravirtual drivers. ' +
          'NoCloud finds the seed by its cidata label either way. A change is taken at the next start (RestartRequired names spec.cloudInit).',
        ['virtio', 'sata'],
        { default: 'virtio' },
      ),
    },
  ),
  [
    {
      id: 'vm-cloud-init-one-user-data',
      cel: '!has(self.userData) || !has(self.userDataSecretRef)',
      message: 'set userData or userDataSecretRef, not both',
      fieldPath: '.userDataSecretRef',
      reason: 'FieldValueForbidden',
      holds: (c) => c.userData === undefined || c.userDataSecretRef === undefined,
    },
    {
      id: 'vm-cloud-init-one-network-config',
      cel: '!has(self.networkConfig) || !has(self.networkConfigSecretRef)',
      message: 'set networkConfig or networkConfigSecretRef, not both',
      fieldPath: '.networkConfigSecretRef',
      reason: 'FieldValueForbidden',
      holds: (c) => c.networkConfig === undefined || c.networkConfigSecretRef === undefined,
    },
  ],
);
