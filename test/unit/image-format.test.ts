// Image formats from content (src/provisioning/image-format.ts), on images made by qemu-img (an
// independent writer) and by our ISO 9660 writer: qcow2 with its virtual size, a qcow2 overlay's
// backing file seen, ISO 9660, and everything else raw (also a file too short to tell).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { detectImageFormat, FORMAT_PROBE_BYTES } from '../../src/provisioning/image-format.js';
import { buildIso9660 } from '../../src/provisioning/iso9660.js';

const dir = mkdtempSync(join(tmpdir(), 'vf-image-format-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: 'pipe' });
}

describe('image format from content', () => {
  it('reads a qcow2 image made by qemu-img: version 3, its virtual size, no backing file', () => {
    qemuImg('create', '-f', 'qcow2', join(dir, 'base.qcow2'), '3M');
    expect(detectImageFormat(readFileSync(join(dir, 'base.qcow2')))).toEqual({
      format: 'qcow2',
      version: 3,
      virtualSizeBytes: 3n * 1024n * 1024n,
      hasBackingFile: false,
    });
  });

  it('sees the backing file of a qcow2 overlay', () => {
    qemuImg('create', '-f', 'qcow2', join(dir, 'b.qcow2'), '1M');
    qemuImg('create', '-f', 'qcow2', '-b', join(dir, 'b.qcow2'), '-F', 'qcow2', join(dir, 'overlay.qcow2'));
    expect(detectImageFormat(readFileSync(join(dir, 'overlay.qcow2')))).toMatchObject({
      format: 'qcow2',
      hasBackingFile: true,
    });
  });

  it('takes ISO 9660 for iso, and a raw image from qemu-img, an empty and a short file for raw', () => {
    const iso = buildIso9660([{ name: 'a', content: Buffer.from('x') }], { volumeId: 'x', date: new Date(0) });
    expect(detectImageFormat(iso.subarray(0, FORMAT_PROBE_BYTES))).toEqual({ format: 'iso' });
    qemuImg('create', '-f', 'raw', join(dir, 'disk.raw'), '1M');
    expect(detectImageFormat(readFileSync(join(dir, 'disk.raw')))).toEqual({ format: 'raw' });
    expect(detectImageFormat(Buffer.alloc(0))).toEqual({ format: 'raw' });
    expect(detectImageFormat(Buffer.from('QFI'))).toEqual({ format: 'raw' });
  });
});
