// Whether a file that looks like a qcow2 or ISO 9660 image is whole: a file cut short (an upload
// from a copy that stopped, a partial download) still has its header, so the format alone does
// not tell. A qcow2 names where its tables and clusters are; every one must be inside the file.
// An ISO's primary volume descriptor says how many blocks the volume has. A raw image has no
// such record: only a checksum tells (the uploader's sha256).
import { open, type FileHandle } from 'node:fs/promises';
import type { ImageFormatName } from '../../api/virtualmachineimage.js';

const OFFSET_MASK = 0x00fffffffffffe00n;
const COMPRESSED = 1n << 62n;

/** Why the file is not a whole image of `format`, or undefined when nothing is missing. */
export async function truncationProblem(file: string, format: ImageFormatName): Promise<string | undefined> {
  if (format === 'raw') return undefined;
  const handle = await open(file, 'r');
  try {
    const length = BigInt((await handle.stat()).size);
    return format === 'qcow2' ? await qcow2Problem(handle, length) : await isoProblem(handle, length);
  } finally {
    await handle.close();
  }
}

async function read(handle: FileHandle, offset: bigint, bytes: number): Promise<Buffer> {
  const buffer = Buffer.alloc(bytes);
  const { bytesRead } = await handle.read(buffer, 0, bytes, Number(offset));
  return buffer.subarray(0, bytesRead);
}

function cut(what: string, end: bigint, length: bigint): string {
  return `the file is cut short: its ${what} ends at byte ${end}, but the file has ${length} bytes (a partial copy or download? use the whole file)`;
}

async function qcow2Problem(handle: FileHandle, length: bigint): Promise<string | undefined> {
  const header = await read(handle, 0n, 104);
  if (header.length < 72) return cut('qcow2 header', 72n, length);
  const version = header.readUInt32BE(4);
  const clusterBits = header.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) return `the qcow2 header has cluster_bits ${clusterBits} (9-21 expected)`;
  const clusterSize = 1n << BigInt(clusterBits);
  const l1Size = header.readUInt32BE(36);
  const l1Offset = header.readBigUInt64BE(40);
  const refcountOffset = header.readBigUInt64BE(48);
  const refcountClusters = BigInt(header.readUInt32BE(56));
  // Extended L2 entries (incompatible feature bit 4, version 3) are 16 bytes; the first 8 as usual.
  const extended = version >= 3 && header.length >= 80 && (header.readBigUInt64BE(72) & 16n) !== 0n;
  const l2Entry = extended ? 16 : 8;
  const refcountEnd = refcountOffset + refcountClusters * clusterSize;
  if (refcountEnd > length) return cut('refcount table', refcountEnd, length);
  const l1End = l1Offset + BigInt(l1Size) * 8n;
  if (l1End > length) return cut('L1 table', l1End, length);
  if (l1Size > 32 << 20) return `the qcow2 L1 table has ${l1Size} entries: too many to check`;
  const l1 = await read(handle, l1Offset, l1Size * 8);
  for (let i = 0; i < l1Size; i += 1) {
    const l2Offset = l1.readBigUInt64BE(i * 8) & OFFSET_MASK;
    if (l2Offset === 0n) continue;
    if (l2Offset + clusterSize > length) return cut(`L2 table ${i}`, l2Offset + clusterSize, length);
    const l2 = await read(handle, l2Offset, Number(clusterSize));
    for (let at = 0; at + 8 <= l2.length; at += l2Entry) {
      const entry = l2.readBigUInt64BE(at);
      let end: bigint;
      if ((entry & COMPRESSED) !== 0n) {
        // Compressed: the host offset is in the low 62 - (cluster_bits - 8) bits.
        const bits = 62n - (BigInt(clusterBits) - 8n);
        end = (entry & ((1n << bits) - 1n)) + 1n;
      } else {
        const offset = entry & OFFSET_MASK;
        if (offset === 0n) continue;
        end = offset + clusterSize;
      }
      if (end > length) return cut('data', end, length);
    }
  }
  return undefined;
}

async function isoProblem(handle: FileHandle, length: bigint): Promise<string | undefined> {
  const descriptor = await read(handle, 0x8000n, 136);
  if (descriptor.length < 136) return cut('ISO 9660 volume descriptor', 0x8000n + 136n, length);
  if (descriptor[0] !== 1) return undefined; // not the primary descriptor: no volume size to check
  const blocks = BigInt(descriptor.readUInt32LE(80));
  const blockSize = BigInt(descriptor.readUInt16LE(128));
  const end = blocks * blockSize;
  if (end > length) return cut('ISO 9660 volume', end, length);
  return undefined;
}
