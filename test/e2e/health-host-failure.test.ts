// Host failure end-to-end on real libvirtd hosts (test/rig) with real QEMU guests (issue 6,
// Done 2). A host's network namespace is cut off (its outer veth down) while its guests keep
// running:
//
// - without fencing, no VM is started elsewhere: each says Ready=Unknown, RecoveryBlocked, "no
//   fencing is configured", through several more missed heartbeats; once the link is back they
//   are Ready on the same host, their QEMUs never restarted;
// - with a fencing command (a script that "powers the host off": SIGKILL of every process in
//   the host's network namespace, libvirtd and QEMUs included), the command is run once, the old
//   QEMUs are gone, and every VM runs on one of the two other hosts, its restart counted.
//
// A checker counts, every ~100 ms from before the first cut to the end, the live QEMU processes
// of each VM (command line `-uuid <UID>`; the QEMUs of every rig host are processes of this
// machine): never more than one per VM.
//
// Needs root (the rig). Run alone:
//   node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
//     --selectProjects e2e --testPathPatterns health-host-failure
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject } from '../../src/controllers/resources.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { guestImage } from '../rig/guest.js';
import { CopiesChecker, qemuProcessesByUuid } from '../rig/qemu-copies.js';
import type { RigHost } from '../rig/rig.js';
import { condition, guestVm, hostPool, isRunning, RigController, type Pool } from './harness.js';

const POOL = 'rig-host-failure';
const VMS = ['hf-0', 'hf-1', 'hf-2', 'hf-3'];
/** The host that is cut off (both cases), as the pool names it. */
const CUT = 'rig-0';

const stack = new RigController({ hosts: 3, tag: 'host-failure' });
const { dir, logs } = stack;
// Waiting on conditions: watch events, plus a 100 ms tick for files and /proc.
const until = stack.until.bind(stack);

/** Readiness changes of the pool's hosts as the watch saw them. */
const notReadySeen: Array<{ at: number; host: string; ready: boolean; reason: string }> = [];

const vm = (name: string) => stack.vm(name);
const pool = () => stack.pool(POOL);
const hostStatus = (name: string) => pool()?.status?.hosts?.find((h) => h.name === name);
function describeVms(): string {
  return VMS.map((name) => {
    const v = vm(name);
    const ready = condition(v, 'Ready');
    return `${name}: ${v?.status?.phase} on ${v?.status?.host} restarts ${v?.status?.restarts ?? 0}, Ready ${ready?.status}/${ready?.reason} (${ready?.message})`;
  }).join('\n');
}
const rigHost = (poolHostName: string) => stack.rigHost(poolHostName);

// ---- the copies checker ------------------------------------------------------------------------

const checker = new CopiesChecker(
  () =>
    new Map(
      VMS.flatMap((name) => (vm(name)?.metadata.uid ? [[vm(name)!.metadata.uid!, name] as [string, string]] : [])),
    ),
);

/** Domains of the VMs on a reachable host, listed through the binding. */
async function domainsOn(host: RigHost): Promise<Array<{ uuid: string; state: string }>> {
  const uids = new Set(VMS.map((name) => vm(name)?.metadata.uid));
  const conn = await LibvirtConnection.open(host.uri);
  try {
    return (await conn.listAllDomains())
      .filter((d) => uids.has(d.uuid))
      .map((d) => ({ uuid: d.uuid, state: String(d.state) }));
  } finally {
    await conn.close();
  }
}

/** Missed heartbeats of host `name` logged by the HostPool controller (since `since`, epoch ms). */
function missedBeats(name: string, since = 0): number {
  return logs
    .lines()
    .filter(
      (line) =>
        line.msg === 'heartbeat missed' &&
        line.host === name &&
        line.pool === POOL &&
        Date.parse(String(line.time)) >= since,
    ).length;
}

const poolHost = (i: number, extra: Record<string, unknown> = {}) => stack.poolHost(i, extra);

async function setHosts(hosts: Array<Record<string, unknown>>): Promise<void> {
  await stack.client.patch(HOST_POOL, undefined, POOL, { spec: { hosts } });
}

// ---- setup ---------------------------------------------------------------------------------------

beforeAll(
  () =>
    stack.start((_vms, pools) =>
      pools.on((event) => {
        // Every time a host of the pool is seen not ready, with the reason.
        for (const host of (event.object as Pool).status?.hosts ?? []) {
          const last = [...notReadySeen].reverse().find((seen) => seen.host === host.name);
          if (!host.ready && (!last || last.ready))
            notReadySeen.push({ at: Date.now(), host: host.name, ready: false, reason: host.reason ?? '' });
          else if (host.ready && last && !last.ready)
            notReadySeen.push({ at: Date.now(), host: host.name, ready: true, reason: '' });
        }
      }),
    ),
  180_000,
);

afterAll(async () => {
  checker.stop();
  if (process.env.VIRTFLEET_TEST_LOGS) {
    for (const line of logs.lines()) if (Number(line.level) >= 40) process.stderr.write(`${JSON.stringify(line)}\n`);
  }
  // VMs first (their finalizers need the controller); a VM still placed on the dead host cannot
  // go, and is left to the control plane's removal.
  await stack.deleteVms(30_000);
  // Every host, the fenced one included (its processes are gone; its namespace, veth and slot
  // are removed here).
  await stack.stop();
}, 180_000);

describe('a host cut off from the controller while its guests keep running', () => {
  it(`puts ${VMS.length} VMs on ${CUT}, then adds the other two hosts`, async () => {
    const image = await guestImage();
    await stack.client.create(
      HOST_POOL,
      hostPool(POOL, { hosts: [poolHost(0)], failureDetection: { heartbeatPeriodSeconds: 1, failureThreshold: 3 } }),
    );
    await until(
      () => pool()?.status?.readyHosts === 1,
      60_000,
      () => `${CUT} ready: ${JSON.stringify(pool()?.status)}`,
    );
    for (const name of VMS) await stack.client.create(VIRTUAL_MACHINE, guestVm(name, POOL, image));
    await until(
      () => VMS.every((name) => isRunning(vm(name)) && vm(name)?.status?.host === CUT),
      120_000,
      () => `all Running on ${CUT}:\n${describeVms()}`,
    );
    await setHosts([poolHost(0), poolHost(1), poolHost(2)]);
    await until(
      () => pool()?.status?.readyHosts === 3,
      60_000,
      () => `3 hosts ready: ${JSON.stringify(pool()?.status?.hosts)}`,
    );
    // From before the first cut until the end of the file.
    checker.start();
    expect([...checker.sample().values()]).toEqual(VMS.map(() => 1));
  }, 180_000);

  it('without fencing: no VM is started elsewhere, each says why; back on the same host once the link is back', async () => {
    const cut = rigHost(CUT);
    const pidsBefore = new Map(VMS.map((name) => [name, cut.qemuPid(vm(name)!.status!.domainName!)]));
    const cutAt = Date.now();
    await cut.cutLink('link');
    await until(
      () => hostStatus(CUT)?.ready === false,
      30_000,
      () => `${CUT} NotReady: ${JSON.stringify(hostStatus(CUT))}`,
    );
    const notReadyAfter = Date.now() - cutAt;
    expect(hostStatus(CUT)?.reason).toMatch(/^(HeartbeatMissed|Disconnected)$/);
    const blocked = (name: string) => {
      const ready = condition(vm(name), 'Ready');
      return vm(name)?.status?.phase === 'Unknown' && ready?.status === 'Unknown' && ready.reason === 'RecoveryBlocked';
    };
    await until(
      () => VMS.every(blocked),
      30_000,
      () => `all RecoveryBlocked:\n${describeVms()}`,
    );
    const blockedAfter = Date.now() - cutAt;
    for (const name of VMS) {
      expect(condition(vm(name), 'Ready')?.message).toMatch(
        new RegExp(
          `^host ${CUT} failed \\((HeartbeatMissed|Disconnected): .*\\); the VM is not started elsewhere because its old copy may still be running there and no fencing is configured \\(HostPool ${POOL} spec\\.hosts\\[${CUT}\\]\\.fencing\\)`,
        ),
      );
    }

    // It stays so: through three more missed heartbeats of the cut host, the VMs stay blocked,
    // nothing of them appears on the other hosts, and their guests run on where they were.
    const beats = missedBeats(CUT);
    await until(
      () => missedBeats(CUT) >= beats + 3,
      30_000,
      () => `3 more missed heartbeats of ${CUT} (${missedBeats(CUT) - beats} so far)`,
    );
    expect(VMS.filter((name) => !blocked(name))).toEqual([]);
    expect(await domainsOn(rigHost('rig-1'))).toEqual([]);
    expect(await domainsOn(rigHost('rig-2'))).toEqual([]);
    const copies = checker.sample();
    expect(VMS.map((name) => [name, copies.get(name)])).toEqual(VMS.map((name) => [name, 1]));
    expect(stack.fleet.host(POOL, CUT)?.verdict.fencing).toBeUndefined();
    expect(hostStatus(CUT)?.fencing).toBeUndefined();
    const outage = Date.now() - cutAt;

    await cut.restoreLink('link');
    const restoredAt = Date.now();
    await until(
      () => VMS.every((name) => isRunning(vm(name))),
      90_000,
      () => `all Running again:\n${describeVms()}`,
    );
    const backAfter = Date.now() - restoredAt;
    for (const name of VMS) {
      expect(vm(name)?.status?.host).toBe(CUT);
      expect(vm(name)?.status?.restarts ?? 0).toBe(0);
      // The same QEMU: never stopped, never started again.
      expect(cut.qemuPid(vm(name)!.status!.domainName!)).toBe(pidsBefore.get(name));
    }
    expect(await domainsOn(rigHost('rig-1'))).toEqual([]);
    expect(await domainsOn(rigHost('rig-2'))).toEqual([]);
    await until(
      () => hostStatus(CUT)?.ready === true,
      30_000,
      () => `${CUT} Ready again`,
    );
    process.stdout.write(
      `host cut, no fencing: cut → ${CUT} NotReady ${notReadyAfter} ms, → all ${VMS.length} VMs RecoveryBlocked ${blockedAfter} ms; ` +
        `link restored after ${outage} ms; → all Running on ${CUT} again ${backAfter} ms\n`,
    );
    expect(checker.violations).toEqual([]);
  }, 180_000);

  it('with fencing: the command runs once, the old guests are gone, every VM runs on another host', async () => {
    const cut = rigHost(CUT);
    const fenceLog = join(dir, 'fence.log');
    const fenceScript = join(dir, 'fence.sh');
    // Powers the host off: every process in its network namespace (libvirtd, virtlockd, the
    // QEMUs, the reaper) is killed. Appends one line per call.
    writeFileSync(
      fenceScript,
      [
        '#!/bin/sh',
        `echo "$(date +%s%3N) host=$VIRTFLEET_HOST uri=$VIRTFLEET_HOST_URI netns=$1" >> ${fenceLog}`,
        'ip netns pids "$1" | xargs -r kill -9',
        'echo "powered off $1"',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(fenceScript, 0o755);
    const before = new Map(
      VMS.map((name) => [
        name,
        { restarts: vm(name)?.status?.restarts ?? 0, pid: cut.qemuPid(vm(name)!.status!.domainName!) },
      ]),
    );
    const generation = (await stack.client.patch(HOST_POOL, undefined, POOL, {
      spec: {
        hosts: [
          poolHost(0, { fencing: { method: 'command', command: [fenceScript, cut.netns] } }),
          poolHost(1),
          poolHost(2),
        ],
      },
    })) as PoolObject;
    // The controller has seen the fencing command once its status names that generation.
    await until(
      () => pool()?.status?.observedGeneration === generation.metadata.generation,
      30_000,
      () => 'the pool with fencing observed',
    );
    expect(pool()?.status?.readyHosts).toBe(3);

    const cutAt = Date.now();
    await cut.cutLink('link');
    const moved = (name: string) => {
      const v = vm(name);
      return isRunning(v) && v?.status?.host !== CUT && (v?.status?.restarts ?? 0) === before.get(name)!.restarts + 1;
    };
    let notReadyAt = 0;
    let calledAt = 0;
    let fencedAt = 0;
    await until(
      () => {
        const now = Date.now();
        if (!notReadyAt && hostStatus(CUT)?.ready === false) notReadyAt = now;
        if (!calledAt && existsSync(fenceLog)) calledAt = now;
        if (!fencedAt && hostStatus(CUT)?.fencing?.state === 'Fenced') fencedAt = now;
        return VMS.every(moved);
      },
      90_000,
      () => `all moved off ${CUT}:\n${describeVms()}\n${CUT}: ${JSON.stringify(hostStatus(CUT))}`,
    );
    const allRunningAt = Date.now();
    await until(
      () => hostStatus(CUT)?.fencing?.state === 'Fenced',
      10_000,
      () => `${CUT} Fenced in status: ${JSON.stringify(hostStatus(CUT))}`,
    );
    fencedAt ||= Date.now();

    // The command ran once, with the host's name and namespace.
    const calls = readFileSync(fenceLog, 'utf8').trim().split('\n');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(new RegExp(` host=${CUT} uri=${cut.uri.replace(/[.+]/g, '\\$&')} netns=${cut.netns}$`));
    const fencedCallAt = Number(calls[0]!.split(' ')[0]);
    expect(hostStatus(CUT)).toMatchObject({
      ready: false,
      fencing: { state: 'Fenced', attempts: 1, message: `${fenceScript} exited 0: powered off ${cut.netns}` },
    });
    // The old guests are gone: nothing lives in the host's namespace any more.
    expect(cut.pids()).toEqual([]);
    const live = qemuProcessesByUuid();
    for (const name of VMS) {
      const v = vm(name)!;
      expect([...(live.get(v.metadata.uid!) ?? [])]).not.toContain(before.get(name)!.pid);
      expect(live.get(v.metadata.uid!)).toHaveLength(1);
      expect(['rig-1', 'rig-2']).toContain(v.status?.host);
      expect(condition(v, 'Scheduled')?.message).toMatch(new RegExp(`moved from failed host ${CUT}`));
    }
    // Each VM's domain is on exactly the host its status names.
    const on1 = await domainsOn(rigHost('rig-1'));
    const on2 = await domainsOn(rigHost('rig-2'));
    expect([...on1, ...on2].map((d) => d.uuid).sort()).toEqual(VMS.map((name) => vm(name)!.metadata.uid).sort());
    for (const d of on1) expect(stack.vms.list().find((v) => v.metadata.uid === d.uuid)?.status?.host).toBe('rig-1');
    for (const d of on2) expect(stack.vms.list().find((v) => v.metadata.uid === d.uuid)?.status?.host).toBe('rig-2');
    const recovery = await stack.manager.metrics.recoveryDuration.get();
    expect(
      recovery.values.find(
        (v) => v.metricName === 'virtfleet_recovery_duration_seconds_count' && v.labels.kind === 'host',
      )?.value,
    ).toBe(VMS.length);

    // Still once, a few heartbeats later (a Fenced host is not fenced again).
    const beats = missedBeats(CUT);
    await until(
      () => missedBeats(CUT) >= beats + 2 || hostStatus(CUT)?.reason === 'Disconnected',
      30_000,
      () => 'more heartbeats of the fenced host',
    );
    expect(readFileSync(fenceLog, 'utf8').trim().split('\n')).toHaveLength(1);

    checker.sample();
    checker.stop();
    // The hosts the VMs moved to stay Ready while they start them: their heartbeats go over a
    // connection of their own, not behind the slow domainCreate calls (docs/benchmarks.md). A
    // destination declared failed would be fenced too, with fencing on every host.
    const destinationFlips = notReadySeen.filter(
      (seen) => (seen.host === 'rig-1' || seen.host === 'rig-2') && seen.at >= cutAt && !seen.ready,
    );
    const others = ['rig-1', 'rig-2'].map((name) => {
      const flips = destinationFlips.filter((seen) => seen.host === name);
      return `${name} missed ${missedBeats(name, cutAt)} heartbeats${flips.length ? `, NotReady ${flips.length}× (${flips.map((f) => `${f.reason} at +${f.at - cutAt} ms`).join(', ')})` : ''}`;
    });
    process.stdout.write(
      `host cut, fencing: cut → ${CUT} NotReady (pool status) ${notReadyAt - cutAt} ms, → fencing command called ${fencedCallAt - cutAt} ms ` +
        `(seen ${calledAt - cutAt} ms), → Fenced (pool status) ${fencedAt - cutAt} ms, → all ${VMS.length} VMs Running elsewhere ${allRunningAt - cutAt} ms ` +
        `(${VMS.map((name) => `${name} → ${vm(name)?.status?.host}`).join(', ')}); meanwhile ${others.join('; ')}\ncopies checker: ${checker.sampling()}; most live QEMUs per VM at once: ${[...checker.max].map(([n, m]) => `${n} ${m}`).join(', ')}\n`,
    );
    expect(checker.violations).toEqual([]);
    expect([...checker.max.values()].every((m) => m <= 1)).toBe(true);
    expect(destinationFlips).toEqual([]);
  }, 180_000);
});
