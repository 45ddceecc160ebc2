// Where the controller stages downloads before they go to a host (VirtualMachineImage URLs, disk
// image URLs, installer kernels and initrds): $VIRTFLEET_STAGING_DIR, else the temp directory.
// deploy/ sets it to a volume sized for images; the temp directory (/tmp) there is a small
// memory-backed one for host credentials, which must not end up on disk, so TMPDIR stays as it is.
import { tmpdir } from 'node:os';

export const STAGING_DIR_ENV = 'VIRTFLEET_STAGING_DIR';

export function stagingDir(): string {
  return process.env[STAGING_DIR_ENV] || tmpdir();
}
