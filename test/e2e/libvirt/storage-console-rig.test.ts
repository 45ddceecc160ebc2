// What libvirt's test driver cannot do, on a real libvirtd (test/rig): volume
// upload and download through streams, and a guest's serial console read
// through virDomainOpenConsole as it prints. Needs root and the rig's guest
// (hack/setup.sh).
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { LibvirtError } from '../../../src/hypervisors/libvirt/native/index.js';
import { el, serialize } from '../../integration/libvirt/fixtures.js';
import { READY_MARKER, guestImage } from '../../rig/guest.js';
import { rigConnection } from './rig-connection.js';

const KiB = 1024;

describe('libvirt binding: volume streams and console on a real libvirtd', () => {
  const on = rigConnection();

  it('uploads to and downloads from a volume, from and to Buffers and files', async () => {
    const pool = `streams-${process.pid}`;
    const poolPath = join(on.rig.sharedDir, pool);
    await on.conn.storagePoolDefineXML(
      serialize(el('pool', { type: 'dir' }, el('name', {}, pool), el('target', {}, el('path', {}, poolPath)))),
    );
    await on.conn.storagePoolCreate(pool, { build: true });
    try {
      const vol = await on.conn.storageVolCreateXML(
        pool,
        serialize(
          el(
            'volume',
            {},
            el('name', {}, 'disk.raw'),
            el('capacity', { unit: 'KiB' }, 1024),
            el('target', {}, el('format', { type: 'raw' })),
          ),
        ),
      );
      expect(vol.path).toBe(join(poolPath, 'disk.raw'));

      // A Buffer in, a Buffer out.
      const data = randomBytes(256 * KiB);
      expect(await on.conn.storageVolUpload(vol.key, data)).toBe(data.length);
      const back = await on.conn.storageVolDownload(vol.key, { length: data.length });
      expect(back.equals(data)).toBe(true);
      expect(readFileSync(vol.path).subarray(0, data.length).equals(data)).toBe(true);

      // At an offset, from a file; the whole volume out to a file.
      const file = join(on.rig.sharedDir, `upload-${process.pid}.bin`);
      const more = randomBytes(64 * KiB);
      writeFileSync(file, more);
      expect(await on.conn.storageVolUpload(vol.key, file, { offset: 512 * KiB })).toBe(more.length);
      const out = join(on.rig.sharedDir, `download-${process.pid}.bin`);
      expect(await on.conn.storageVolDownload(vol.key, { file: out })).toBe(1024 * KiB);
      const whole = readFileSync(out);
      expect(whole.subarray(0, data.length).equals(data)).toBe(true);
      expect(whole.subarray(512 * KiB, 512 * KiB + more.length).equals(more)).toBe(true);

      // A clone carries the data.
      const clone = await on.conn.storageVolCreateXMLFrom(
        pool,
        serialize(
          el(
            'volume',
            {},
            el('name', {}, 'clone.raw'),
            el('capacity', { unit: 'KiB' }, 1024),
            el('target', {}, el('format', { type: 'raw' })),
          ),
        ),
        vol.key,
      );
      expect((await on.conn.storageVolDownload(clone.key, { length: data.length })).equals(data)).toBe(true);
      expect(await on.conn.storageVolGetInfo(clone.key)).toMatchObject({ type: 'file', capacity: 1024 * KiB });

      // A source that fails mid-stream (a directory: open works, read
      // fails) aborts the stream and reports the read error; the connection
      // carries on.
      await expect(on.conn.storageVolUpload(vol.key, on.rig.sharedDir)).rejects.toMatchObject({
        codeName: 'VIR_ERR_SYSTEM_ERROR',
        message: expect.stringContaining('Is a directory'),
      });
      expect(await on.conn.isAlive()).toBe(true);
      expect((await on.conn.storageVolDownload(vol.key, { length: data.length })).equals(data)).toBe(true);

      await on.conn.storageVolDelete(clone.key);
      await on.conn.storageVolDelete(vol.key);
    } finally {
      await on.conn.storagePoolDestroy(pool).catch(() => undefined);
      await on.conn.storagePoolDelete(pool).catch(() => undefined);
      await on.conn.storagePoolUndefine(pool).catch(() => undefined);
    }
  }, 60_000);

  it("reads the guest's serial console through a stream as it boots, writes to it and closes it", async () => {
    const { kernel, initrd } = await guestImage();
    const uuid = randomUUID();
    const name = `console-${process.pid}`;
    const xml = serialize(
      el(
        'domain',
        { type: 'qemu' },
        el('name', {}, name),
        el('uuid', {}, uuid),
        el('memory', { unit: 'MiB' }, 128),
        el('vcpu', {}, 1),
        el(
          'os',
          {},
          el('type', { arch: 'x86_64', machine: 'pc' }, 'hvm'),
          el('kernel', {}, kernel),
          el('initrd', {}, initrd),
          el('cmdline', {}, 'console=ttyS0 quiet panic=-1'),
        ),
        el('on_poweroff', {}, 'destroy'),
        el(
          'devices',
          {},
          el('emulator', {}, '/usr/bin/qemu-system-x86_64'),
          el('serial', { type: 'pty' }, el('target', { port: 0 })),
          el('console', { type: 'pty' }, el('target', { type: 'serial', port: 0 })),
          el('controller', { type: 'usb', model: 'none' }),
          el('memballoon', { model: 'none' }),
        ),
      ),
    );
    await on.conn.defineXML(xml);
    try {
      await on.conn.domainCreate(uuid, { paused: true });
      const console = await on.conn.domainOpenConsole(uuid);
      let text = '';
      const marker = new Promise<RegExpMatchArray>((resolve) => {
        console.onData((data) => {
          text += data.toString('latin1');
          const match = READY_MARKER.exec(text);
          if (match) resolve(match);
        });
      });
      const ended = new Promise<LibvirtError | undefined>((resolve) => console.onEnd(resolve));
      await on.conn.domainResume(uuid);
      const match = await marker;
      expect(Number(match[1])).toBeGreaterThan(0);

      // A second client is refused while this one holds the console.
      await expect(on.conn.domainOpenConsole(uuid)).rejects.toMatchObject({ name: 'LibvirtError' });
      expect(await console.write('\n')).toBe(1);

      await console.close();
      expect(await ended).toBeUndefined();
      expect(console.ended).toBe(true);
      await expect(console.write('x')).rejects.toMatchObject({ codeName: 'VIR_ERR_INVALID_STREAM' });

      // Reopened, it ends by itself when the guest goes away.
      const again = await on.conn.domainOpenConsole(uuid);
      const againEnded = new Promise<LibvirtError | undefined>((resolve) => again.onEnd(resolve));
      await on.conn.domainDestroy(uuid);
      await againEnded;
      expect(again.ended).toBe(true);
      await again.close();
    } finally {
      await on.conn.domainDestroy(uuid).catch(() => undefined);
      await on.conn.domainUndefine(uuid).catch(() => undefined);
    }
  }, 90_000);
});
