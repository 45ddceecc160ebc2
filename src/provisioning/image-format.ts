// What a disk image is, from its first bytes rather than its name or a server's word: qcow2 (its
// magic), ISO 9660 (a volume descriptor's "CD001" at byte 0x8001), else raw. For qcow2 also its
// virtual size and whether it names a backing file: an image that points at another file on the
// host would let a guest read that file, so callers refuse it.

/** Enough bytes to tell all three apart: the ISO 9660 identifier ends at 0x8006. */
export const FORMAT_PROBE_BYTES = 0x8006;

const QCOW2_MAGIC = 0x514649fb; // 'QFI\xfb'
const ISO_OFFSET = 0x8001;

export type ImageFormat =
  | { format: 'qcow2'; version: number; virtualSizeBytes: bigint; hasBackingFile: boolean }
  | { format: 'iso' }
  | { format: 'raw' };

/** The format of an image whose first bytes are `head` (at least FORMAT_PROBE_BYTES, or the whole image). */
export function detectImageFormat(head: Buffer): ImageFormat {
  if (head.length >= 32 && head.readUInt32BE(0) === QCOW2_MAGIC) {
    return {
      format: 'qcow2',
      version: head.readUInt32BE(4),
      // backing_file_offset (bytes 8-15) is 0 when there is no backing file.
      hasBackingFile: head.readBigUInt64BE(8) !== 0n,
      virtualSizeBytes: head.readBigUInt64BE(24),
    };
  }
  if (head.length >= ISO_OFFSET + 5 && head.toString('ascii', ISO_OFFSET, ISO_OFFSET + 5) === 'CD001')
    return { format: 'iso' };
  return { format: 'raw' };
}
