// What one rig guest costs this machine: starts N domains of each kind on one rig host (test/rig)
// and prints the time to define+start them, their QEMUs' resident memory, and the CPU they use
// booting and then idle. Kinds: the tiny guest (kernel + busybox initramfs, 128 MiB) and the
// smallest domain the rig can run (no kernel, no disk, 16 MiB: SeaBIOS finds nothing to boot).
// Decides how many guests a fault test under load can afford (test/e2e/faults-under-load*).
//
//   tsx bench/rig/guest-cost.ts [N=10]       # needs root (the rig)
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { el, serialize } from '../../test/harness/xml.js';
import { guestImage } from '../../test/rig/guest.js';
import { qemuProcessesByUuid, procStat } from '../../test/rig/qemu-copies.js';
import { Rig } from '../../test/rig/rig.js';

const N = Number(process.argv[2] ?? 10);
const TICK = 100; // USER_HZ

function domainXml(
  name: string,
  uuid: string,
  kind: 'tiny' | 'bare',
  rig: Rig,
  kernel?: { kernel: string; initrd: string },
): string {
  const os =
    kind === 'tiny'
      ? el(
          'os',
          {},
          el('type', { arch: 'x86_64', machine: 'pc' }, 'hvm'),
          el('kernel', {}, kernel!.kernel),
          el('initrd', {}, kernel!.initrd),
          el('cmdline', {}, 'console=ttyS0 quiet panic=-1'),
        )
      : el('os', {}, el('type', { arch: 'x86_64', machine: 'pc' }, 'hvm'));
  return serialize(
    el(
      'domain',
      { type: 'qemu' },
      el('name', {}, name),
      el('uuid', {}, uuid),
      el('memory', { unit: 'MiB' }, kind === 'tiny' ? 128 : 16),
      el('vcpu', {}, 1),
      os,
      el(
        'devices',
        {},
        el('emulator', {}, '/usr/bin/qemu-system-x86_64'),
        el(
          'serial',
          { type: 'file' },
          el('source', { path: join(rig.sharedDir, 'guests', `${name}.log`) }),
          el('target', { port: 0 }),
        ),
        el('controller', { type: 'usb', model: 'none' }),
        el('memballoon', { model: 'none' }),
      ),
    ),
  );
}

/** Sum of resident memory (MiB) and CPU seconds of the QEMUs of these UUIDs. */
function usage(uuids: string[]): { rssMiB: number; cpuS: number } {
  const byUuid = qemuProcessesByUuid();
  let rssKiB = 0;
  let ticks = 0;
  for (const uuid of uuids) {
    for (const pid of byUuid.get(uuid) ?? []) {
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      rssKiB += Number(rss ?? 0);
      const stat = procStat(pid) ?? [];
      ticks += Number(stat[11] ?? 0) + Number(stat[12] ?? 0); // utime, stime
    }
  }
  return { rssMiB: rssKiB / 1024, cpuS: ticks / TICK };
}

const rig = await Rig.start({ hosts: 1, diskLeases: false });
try {
  const image = await guestImage();
  const conn = await LibvirtConnection.open(rig.hosts[0]!.uri);
  for (const kind of ['bare', 'tiny'] as const) {
    const uuids = Array.from({ length: N }, () => randomUUID());
    const started = Date.now();
    for (const [i, uuid] of uuids.entries()) {
      await conn.defineXML(domainXml(`${kind}-${i}`, uuid, kind, rig, image));
      await conn.domainCreate(uuid);
    }
    const startMs = (Date.now() - started) / N;
    const afterStart = usage(uuids);
    await new Promise((r) => setTimeout(r, 10_000));
    const at10 = usage(uuids);
    await new Promise((r) => setTimeout(r, 10_000));
    const at20 = usage(uuids);
    process.stdout.write(
      `${kind} (${N} domains): define+start ${startMs.toFixed(0)} ms each; per guest: RSS ${(at20.rssMiB / N).toFixed(1)} MiB, ` +
        `CPU ${(afterStart.cpuS / N).toFixed(2)} s to start, ${(at10.cpuS / N).toFixed(2)} s in its first ~10 s, ` +
        `${(((at20.cpuS - at10.cpuS) / N / 10) * 100).toFixed(1)} % of a core idle after\n`,
    );
    for (const uuid of uuids) {
      await conn.domainDestroy(uuid).catch(() => undefined);
      await conn.domainUndefine(uuid).catch(() => undefined);
    }
  }
  await conn.close();
} finally {
  await rig.teardown();
}
