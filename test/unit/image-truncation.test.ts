// A qcow2 or ISO 9660 image cut short is told from a whole one by its own tables
// (src/controllers/image/truncation.ts): the qcow2 from qemu-img, the ISO from our writer.
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { truncationProblem } from '../../src/controllers/image/truncation.js';
import { buildIso9660 } from '../../src/provisioning/iso9660.js';

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-truncation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function qcow2(name: string, dataMiB: number, extra: string[] = []): string {
  const raw = join(dir, `${name}.raw`);
  writeFileSync(raw, randomBytes(dataMiB * 2 ** 20));
  const path = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...extra, raw, path]);
  return path;
}

describe('truncationProblem', () => {
  it('finds nothing missing in a whole qcow2 (plain, compressed, extended L2)', async () => {
    expect(await truncationProblem(qcow2('whole', 2), 'qcow2')).toBeUndefined();
    expect(await truncationProblem(qcow2('compressed', 1, ['-c']), 'qcow2')).toBeUndefined();
    expect(
      await truncationProblem(qcow2('extended', 1, ['-o', 'extended_l2=on,cluster_size=128k']), 'qcow2'),
    ).toBeUndefined();
  });

  it('names the byte a qcow2 cut short reaches for', async () => {
    const path = qcow2('cut', 2);
    const size = statSync(path).size;
    truncateSync(path, size - 4096);
    expect(await truncationProblem(path, 'qcow2')).toMatch(
      new RegExp(`cut short: its data ends at byte ${size}, but the file has ${size - 4096} bytes`),
    );
    truncateSync(path, 1024);
    expect(await truncationProblem(path, 'qcow2')).toMatch(/cut short: its (refcount|L1) table ends at byte/);
  });

  it('checks an ISO against its volume size, and cannot tell for raw', async () => {
    const iso = join(dir, 'seed.iso');
    writeFileSync(
      iso,
      buildIso9660([{ name: 'user-data', content: Buffer.from('#cloud-config\n') }], {
        volumeId: 'cidata',
        date: new Date(0),
      }),
    );
    expect(await truncationProblem(iso, 'iso')).toBeUndefined();
    const size = statSync(iso).size;
    truncateSync(iso, size - 2048);
    expect(await truncationProblem(iso, 'iso')).toMatch(/ISO 9660 volume ends at byte \d+, but the file has/);
    expect(await truncationProblem(iso, 'raw')).toBeUndefined();
  });
});
