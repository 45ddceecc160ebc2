// The core loop end to end, as a user drives it: a HostPool of two real
// libvirtd hosts (test/rig), `kubectl apply` of a VM boots the tiny guest
// (its marker read from the console through the binding), `kubectl wait`
// sees it Ready, and `kubectl delete` leaves no domain on either host.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { Fleet } from '../../src/controllers/fleet.js';
import { addControllers } from '../../src/controllers/setup.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { Manager } from '../../src/runtime/manager.js';
import { captureLogs } from '../harness/logs.js';
import { guestImage, READY_MARKER } from '../rig/guest.js';
import { Rig } from '../rig/rig.js';

const run = promisify(execFile);
const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-core-e2e-'));
const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
const stop = new AbortController();
const logs = captureLogs('info');
let info: ControlPlaneInfo;
let rig: Rig;
let fleet: Fleet;
let running: Promise<void> | undefined;

async function kubectl(args: string[], input?: string): Promise<string> {
  const child = run(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, ...args], { maxBuffer: 1 << 24 });
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  return stdout;
}

beforeAll(async () => {
  info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  rig = await Rig.start({ hosts: 2, diskLeases: false });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfig);
  const manager = new Manager({ kubeConfig, logger: logs.logger });
  fleet = new Fleet();
  // The busybox guest ignores ACPI shutdown: destroy soon after asking.
  addControllers(manager, { fleet, logger: logs.logger, shutdownGraceMs: 3_000 });
  running = manager.run(stop.signal);
}, 180_000);

afterAll(async () => {
  stop.abort();
  await running;
  await fleet?.close();
  await rig?.teardown();
  await plane.stop();
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

/** Waits for the guest's ready marker on its serial console. */
async function markerOnConsole(uri: string, uuid: string, timeoutMs: number): Promise<string> {
  const conn = await LibvirtConnection.open(uri);
  try {
    const console = await conn.domainOpenConsole(uuid, { force: true });
    let output = '';
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready marker within ${timeoutMs} ms; console said:\n${output.slice(-2000)}`)), timeoutMs);
      console.onData((data) => {
        output += data.toString('latin1');
        const match = READY_MARKER.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[0]);
        }
      });
    }).finally(() => console.close());
  } finally {
    await conn.close();
  }
}

describe('core loop on real libvirtd hosts', () => {
  it('kubectl apply boots the guest, kubectl wait sees it Ready, kubectl delete leaves no domain', async () => {
    const image = await guestImage();
    const pool = {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: 'rig' },
      spec: { hosts: rig.hosts.map((host, i) => ({ name: `rig-${i}`, uri: host.uri })) },
    };
    const vm = {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'tiny', namespace: 'default' },
      spec: {
        hostPoolRef: { name: 'rig' },
        hypervisor: 'kvm',
        memory: '128Mi',
        kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' },
      },
    };
    await kubectl(['apply', '-f', '-'], `${stringify(pool)}---\n${stringify(vm)}`);
    await kubectl(['wait', '--for=condition=Ready', 'vm/tiny', '-n', 'default', '--timeout=120s']);

    const status = JSON.parse(await kubectl(['get', 'vm/tiny', '-n', 'default', '-o', 'json'])) as {
      metadata: { uid: string };
      status: { host: string; domainUUID: string; phase: string };
    };
    expect(status.status.phase).toBe('Running');
    expect(status.status.domainUUID).toBe(status.metadata.uid);
    const host = rig.hosts[Number(status.status.host.replace('rig-', ''))]!;
    expect(await markerOnConsole(host.uri, status.status.domainUUID, 60_000)).toMatch(READY_MARKER);

    await kubectl(['delete', 'vm/tiny', '-n', 'default', '--timeout=120s']);
    for (const each of rig.hosts) {
      const conn = await LibvirtConnection.open(each.uri);
      try {
        expect((await conn.listAllDomains()).map((d) => d.uuid)).not.toContain(status.status.domainUUID);
      } finally {
        await conn.close();
      }
    }
  }, 300_000);
});
