// Pure parts of disk provisioning: volume names that never collide, and what an image file is.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { imageFacts } from '../../src/controllers/vm-image-upload.js';
import { volumeName } from '../../src/controllers/vm-storage.js';
import { domainName } from '../../src/hypervisors/domain-name.js';

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-storage-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('volumeName', () => {
  it('is the domain name and the disk name, and distinct for pairs that would collide with a dash', () => {
    const uid = '0b8e5a3c-1111-4222-8333-444455556666';
    expect(volumeName(domainName('ns', 'vm', uid), 'root')).toBe('vf-ns_vm_root');
    // VM "a-b" with disk "c" and VM "a" with disk "b-c": the same with '-', different with '_'.
    expect(volumeName(domainName('ns', 'a-b', uid), 'c')).not.toBe(volumeName(domainName('ns', 'a', uid), 'b-c'));
    const long = domainName('namespace-with-a-long-name', 'a-virtual-machine-with-an-even-longer-name', uid);
    expect(volumeName(long, 'data')).toBe(`${long}_data`);
  });
});

describe('imageFacts', () => {
  it('reads a qcow2 header for the virtual size, and takes any other file as raw of its length', async () => {
    const qcow2 = Buffer.alloc(4096);
    qcow2.writeUInt32BE(0x514649fb, 0);
    qcow2.writeUInt32BE(3, 4);
    qcow2.writeBigUInt64BE(BigInt(10 * 2 ** 30), 24);
    writeFileSync(join(dir, 'a.qcow2'), qcow2);
    writeFileSync(join(dir, 'b.raw'), Buffer.alloc(12345, 1));
    expect(await imageFacts(join(dir, 'a.qcow2'))).toEqual({ format: 'qcow2', virtualSize: 10 * 2 ** 30 });
    expect(await imageFacts(join(dir, 'b.raw'))).toEqual({ format: 'raw', virtualSize: 12345 });
  });
});
