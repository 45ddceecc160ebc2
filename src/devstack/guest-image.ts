// The rig's tiny guest (a Debian kernel and a busybox initramfs), built by test/rig/build-guest.sh
// from Debian packages and cached by its inputs under $VIRTFLEET_CACHE/guest (hack/setup.sh
// builds it; a second run only prints the directory). Used by the e2e rig and by `make run`'s
// real hosts (real-hosts.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './binaries.js';

const run = promisify(execFile);

export interface GuestImage {
  kernel: string;
  initrd: string;
}

let image: Promise<GuestImage> | undefined;

/** The guest's kernel and initramfs: built on first use, instant when cached. */
export function guestImage(): Promise<GuestImage> {
  image ??= run(join(repoRoot(), 'test/rig/build-guest.sh'), [], { maxBuffer: 1 << 20 }).then(({ stdout }) => {
    const dir = stdout.trim().split('\n').pop() ?? '';
    const kernel = join(dir, 'vmlinuz');
    const initrd = join(dir, 'initramfs.gz');
    if (!existsSync(kernel) || !existsSync(initrd))
      throw new Error(`build-guest.sh gave no image in ${JSON.stringify(dir)}`);
    return { kernel, initrd };
  });
  return image;
}
