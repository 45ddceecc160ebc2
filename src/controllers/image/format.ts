// An image's format from its first bytes (src/provisioning/image-format.ts tells qcow2, ISO 9660
// and raw apart), plus the containers that would otherwise pass for raw: compressed files and
// other hypervisors' formats. Those are refused, as is a qcow2 that names a backing file (a
// guest could read that file on the host).
import { open } from 'node:fs/promises';
import { detectImageFormat, FORMAT_PROBE_BYTES } from '../../provisioning/image-format.js';
import type { ImageFormatName } from '../../api/virtualmachineimage.js';

export type FileFormat = { ok: true; format: ImageFormatName; sizeBytes: number } | { ok: false; message: string };

/** Magic bytes at offset 0 of formats that are not disk images libvirt can use as they are. */
const FOREIGN: ReadonlyArray<{ magic: Buffer; what: string; fix: string }> = [
  { magic: Buffer.from([0x1f, 0x8b]), what: 'gzip-compressed', fix: 'serve the uncompressed image (gunzip)' },
  {
    magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    what: 'xz-compressed',
    fix: 'serve the uncompressed image (unxz)',
  },
  { magic: Buffer.from('BZh'), what: 'bzip2-compressed', fix: 'serve the uncompressed image (bunzip2)' },
  {
    magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
    what: 'zstd-compressed',
    fix: 'serve the uncompressed image (unzstd)',
  },
  { magic: Buffer.from([0x50, 0x4b, 0x03, 0x04]), what: 'a zip archive', fix: 'serve the image file itself' },
  { magic: Buffer.from('KDMV'), what: 'VMware VMDK', fix: 'convert it: qemu-img convert -O qcow2 in.vmdk out.qcow2' },
  {
    magic: Buffer.from('vhdxfile'),
    what: 'Hyper-V VHDX',
    fix: 'convert it: qemu-img convert -O qcow2 in.vhdx out.qcow2',
  },
  { magic: Buffer.from('conectix'), what: 'a VHD', fix: 'convert it: qemu-img convert -O qcow2 in.vhd out.qcow2' },
];

/** The format of the image in `file` (its whole length known), or why it is refused. */
export async function fileFormat(file: string): Promise<FileFormat> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(FORMAT_PROBE_BYTES);
    const { bytesRead } = await handle.read(head, 0, FORMAT_PROBE_BYTES, 0);
    const { size } = await handle.stat();
    return formatOf(head.subarray(0, bytesRead), size);
  } finally {
    await handle.close();
  }
}

export function formatOf(head: Buffer, length: number): FileFormat {
  if (length === 0) return { ok: false, message: 'the file is empty' };
  for (const foreign of FOREIGN) {
    if (head.length >= foreign.magic.length && head.subarray(0, foreign.magic.length).equals(foreign.magic))
      return { ok: false, message: `the file is ${foreign.what}, not a qcow2, raw or iso image: ${foreign.fix}` };
  }
  const detected = detectImageFormat(head);
  if (detected.format === 'qcow2') {
    if (detected.version !== 2 && detected.version !== 3)
      return { ok: false, message: `the file is qcow2 version ${detected.version}; only versions 2 and 3 are read` };
    if (detected.hasBackingFile)
      return {
        ok: false,
        message:
          'the qcow2 image names a backing file, which would let the guest read a file of the host: flatten it (qemu-img convert -O qcow2 in.qcow2 out.qcow2)',
      };
    return { ok: true, format: 'qcow2', sizeBytes: Number(detected.virtualSizeBytes) };
  }
  return { ok: true, format: detected.format, sizeBytes: length };
}
