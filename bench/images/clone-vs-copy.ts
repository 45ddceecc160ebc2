// Disks from a VirtualMachineImage on a real libvirtd (test/rig): the time to make a linked clone
// (a qcow2 overlay whose backing store is the image's volume: what a disk with
// source.image.name gets) against a full copy (copy: true), through the same Hypervisor calls
// the controller makes (src/controllers/image/disks.ts), and the upload of the image into the
// pool (as the image controller does for a URL image, after the download). In the same run, the
// same file's upload through the API server (virtfleet image upload: kube-apiserver's aggregation,
// virtfleet api, then the host) against `virsh vol-upload` straight to the host (upload-paths.ts).
//
//   tsx bench/images/clone-vs-copy.ts [--mib 256] [--runs 5] [--upload-runs 3]   # needs root (the rig)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { LibvirtConnectionPool } from '../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../src/hypervisors/libvirt/driver.js';
import { Rig } from '../../test/rig/rig.js';
import { arg } from '../common.js';
import { measureUploads } from './upload-paths.js';

const run = promisify(execFile);
const MIB = arg('mib', 256);
const RUNS = arg('runs', 5);
const UPLOAD_RUNS = arg('upload-runs', 3);
const POOL = 'bench-images';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-bench-images-'));
  const rig = await Rig.start({ hosts: 1 });
  const connections = new LibvirtConnectionPool();
  try {
    // An image with MIB MiB of data in it (random, so neither qcow2 nor the copy can skip it).
    const raw = join(dir, 'image.raw');
    const chunk = randomBytes(2 ** 20);
    writeFileSync(raw, Buffer.concat(Array.from({ length: MIB }, () => chunk)));
    const file = join(dir, 'image.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, file]);
    rmSync(raw);

    const host = new LibvirtHypervisor(connections, rig.hosts[0]!.uri);
    await host.ensureStoragePool({ name: POOL, path: `/var/lib/libvirt/images/${POOL}` });
    const capacityBytes = MIB * 2 ** 20;
    let start = process.hrtime.bigint();
    const image = await host.createVolume(POOL, { name: 'image', format: 'qcow2', capacityBytes });
    await host.uploadVolume(POOL, 'image', file);
    const uploadMs = ms(start);

    const linked: number[] = [];
    const copied: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      start = process.hrtime.bigint();
      await host.createVolume(POOL, {
        name: `linked-${i}`,
        format: 'qcow2',
        capacityBytes: 2 * capacityBytes,
        backingStore: { path: image.path, format: 'qcow2' },
      });
      linked.push(ms(start));
      start = process.hrtime.bigint();
      await host.cloneVolume(
        POOL,
        { name: `copy-${i}`, format: 'qcow2', capacityBytes },
        { pool: POOL, name: 'image' },
      );
      copied.push(ms(start));
    }
    console.log(`image: ${MIB} MiB of data, qcow2; ${RUNS} runs each on one rig host (libvirt ${rig.hosts[0]!.uri})`);
    console.log(
      `upload into the pool (binding, storageVolUpload): ${uploadMs.toFixed(0)} ms, ${(MIB / (uploadMs / 1000)).toFixed(0)} MiB/s`,
    );
    console.log(
      `linked clone (qcow2 overlay): median ${median(linked).toFixed(1)} ms, max ${Math.max(...linked).toFixed(1)} ms`,
    );
    console.log(
      `full copy (copy: true):       median ${median(copied).toFixed(1)} ms, max ${Math.max(...copied).toFixed(1)} ms`,
    );
    const uploads = await measureUploads(
      file,
      rig.hosts[0]!.uri,
      { pool: POOL, path: `/var/lib/libvirt/images/${POOL}` },
      dir,
      UPLOAD_RUNS,
    );
    const rate = (msValue: number) => `${(MIB / (msValue / 1000)).toFixed(0)} MiB/s`;
    const api = uploads.viaApi.map((u) => u.doneMs);
    const accepted = uploads.viaApi.map((u) => u.acceptedMs);
    console.log(`upload of the same file, ${UPLOAD_RUNS} runs each, median (max):`);
    console.log(
      `  virsh vol-upload straight to the host:        ${median(uploads.virsh).toFixed(0)} ms (${Math.max(...uploads.virsh).toFixed(0)}), ${rate(median(uploads.virsh))}`,
    );
    console.log(
      `  virtfleet image upload through the API server: ${median(api).toFixed(0)} ms (${Math.max(...api).toFixed(0)}), ${rate(median(api))} ` +
        `(of which until the 202, bytes through kube-apiserver staged and checked: ${median(accepted).toFixed(0)} ms)`,
    );
  } finally {
    await connections.closeAll();
    await rig.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
