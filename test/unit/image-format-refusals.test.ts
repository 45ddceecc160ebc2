// What the image controller makes of a file's first bytes (src/controllers/image/format.ts): the
// three formats it imports, and the files that would otherwise pass for raw images, each refused
// with the command that fixes it.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { formatOf } from '../../src/controllers/image/format.js';

function qcow2(version: number, virtualSize: bigint, backingOffset = 0n): Buffer {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(version, 4);
  head.writeBigUInt64BE(backingOffset, 8);
  head.writeBigUInt64BE(virtualSize, 24);
  return head;
}

describe('image formats from content', () => {
  it('reads a qcow2 header: version 2 or 3, its virtual size', () => {
    expect(formatOf(qcow2(3, 10n * 2n ** 30n), 196_608)).toEqual({
      ok: true,
      format: 'qcow2',
      sizeBytes: 10 * 2 ** 30,
    });
    expect(formatOf(qcow2(2, 2n ** 20n), 512)).toEqual({ ok: true, format: 'qcow2', sizeBytes: 2 ** 20 });
  });

  it('refuses a qcow2 that names a backing file, and other qcow2 versions', () => {
    expect(formatOf(qcow2(3, 2n ** 30n, 0x200n), 1024)).toMatchObject({
      ok: false,
      message: expect.stringContaining('names a backing file'),
    });
    expect(formatOf(qcow2(1, 2n ** 30n), 1024)).toMatchObject({
      ok: false,
      message: expect.stringContaining('version 1'),
    });
  });

  it('tells an ISO 9660 image by CD001 at 0x8001, and takes anything else as raw with its length', () => {
    const iso = Buffer.alloc(0x8800);
    iso.write('CD001', 0x8001, 'ascii');
    expect(formatOf(iso, 0x8800)).toEqual({ ok: true, format: 'iso', sizeBytes: 0x8800 });
    expect(formatOf(Buffer.alloc(4096, 1), 8 * 2 ** 20)).toEqual({ ok: true, format: 'raw', sizeBytes: 8 * 2 ** 20 });
  });

  it('refuses compressed files, archives and other hypervisors’ formats, saying how to fix each', () => {
    const cases: Array<[Buffer, string]> = [
      [
        gzipSync(Buffer.alloc(64)),
        'gzip-compressed, not a qcow2, raw or iso image: serve the uncompressed image (gunzip)',
      ],
      [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]), 'xz-compressed'],
      [Buffer.from('BZh91AY&SY'), 'bzip2-compressed'],
      [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), 'zstd-compressed'],
      [Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0]), 'a zip archive'],
      [Buffer.from('KDMV\x01\x00\x00\x00'), 'VMware VMDK, not a qcow2, raw or iso image: convert it: qemu-img convert'],
      [Buffer.from('vhdxfile....'), 'Hyper-V VHDX'],
      [Buffer.from('conectix....'), 'a VHD'],
    ];
    for (const [head, words] of cases)
      expect(formatOf(head, 1 << 20)).toEqual({ ok: false, message: expect.stringContaining(words) });
  });

  it('refuses an empty file', () => {
    expect(formatOf(Buffer.alloc(0), 0)).toEqual({ ok: false, message: 'the file is empty' });
  });
});
