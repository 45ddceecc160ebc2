// The core loop end to end, as a user drives it: a HostPool of two real
// libvirtd hosts (test/rig), `kubectl apply` of a VM boots the tiny guest
// (its marker read from the console through the binding), `kubectl wait`
// sees it Ready, and `kubectl delete` leaves no domain on either host. The controller's /metrics
// shows the running guest's CPU seconds rising (per-VM usage from libvirt's bulk statistics).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { closeServer, startEndpoints } from '../../src/runtime/http-endpoints.js';
import { readyMarker } from '../rig/console.js';
import { guestImage, READY_MARKER } from '../rig/guest.js';
import { guestVm, hostPool, RigController } from './harness.js';

const run = promisify(execFile);
const stack = new RigController({ hosts: 2, tag: 'core' });

async function kubectl(args: string[], input?: string): Promise<string> {
  const child = run(stack.info.binaries.kubectl, ['--kubeconfig', stack.info.kubeconfig, ...args], {
    maxBuffer: 1 << 24,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  return stdout;
}

beforeAll(() => stack.start(), 180_000);

let metricsServer: Server | undefined;

afterAll(async () => {
  await closeServer(metricsServer);
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

/** The controller's /metrics over HTTP, as `virtfleet controller --metrics-address` serves its registry. */
async function metricsUrl(): Promise<string> {
  const registry = stack.manager.metrics.registry;
  metricsServer ??= await startEndpoints('127.0.0.1:0', {
    '/metrics': async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }),
  });
  return `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;
}

/** The value of the one series of `metric` with these labels, or undefined. */
function sample(text: string, metric: string, labels: Record<string, string>): number | undefined {
  const wanted = `${metric}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}} `;
  const line = text.split('\n').find((l) => l.startsWith(wanted));
  return line === undefined ? undefined : Number(line.slice(wanted.length));
}

describe('core loop on real libvirtd hosts', () => {
  it('kubectl apply boots the guest, kubectl wait sees it Ready, kubectl delete leaves no domain', async () => {
    const image = await guestImage();
    const pool = hostPool('rig', { hosts: stack.poolHosts() });
    const vm = guestVm('tiny', 'rig', image);
    await kubectl(['apply', '-f', '-'], `${stringify(pool)}---\n${stringify(vm)}`);
    await kubectl(['wait', '--for=condition=Ready', 'vm/tiny', '-n', 'default', '--timeout=120s']);

    const status = JSON.parse(await kubectl(['get', 'vm/tiny', '-n', 'default', '-o', 'json'])) as {
      metadata: { uid: string };
      status: { host: string; domainUUID: string; phase: string };
    };
    expect(status.status.phase).toBe('Running');
    expect(status.status.domainUUID).toBe(status.metadata.uid);
    // The guest's marker, read from its console through the binding.
    const conn = await LibvirtConnection.open(stack.rigHost(status.status.host).uri);
    try {
      expect(await readyMarker(conn, status.status.domainUUID, 60_000)).toMatch(READY_MARKER);
    } finally {
      await conn.close();
    }

    await kubectl(['delete', 'vm/tiny', '-n', 'default', '--timeout=120s']);
    for (const each of stack.rig.hosts) {
      const conn = await LibvirtConnection.open(each.uri);
      try {
        expect((await conn.listAllDomains()).map((d) => d.uuid)).not.toContain(status.status.domainUUID);
      } finally {
        await conn.close();
      }
    }
  }, 300_000);

  it("the controller's /metrics shows a running guest's CPU seconds rising between two scrapes", async () => {
    const image = await guestImage();
    const pool = hostPool('rig', { hosts: stack.poolHosts() });
    const vm = guestVm('busy', 'rig', image);
    await kubectl(['apply', '-f', '-'], `${stringify(pool)}---\n${stringify(vm)}`);
    await kubectl(['wait', '--for=condition=Ready', 'vm/busy', '-n', 'default', '--timeout=120s']);
    const host = stack.vms.get('default/busy')!.status!.host!;
    const labels = { namespace: 'default', name: 'busy', host };
    const url = await metricsUrl();
    const scrape = async () => (await fetch(url)).text();

    const first = await scrape();
    const before = sample(first, 'virtfleet_vmi_cpu_usage_seconds_total', labels);
    expect(before).toBeGreaterThan(0);
    expect(sample(first, 'virtfleet_vmi_running', labels)).toBe(1);
    // QEMU reports the balloon's size and the domain's memory without help from the guest.
    expect(sample(first, 'virtfleet_vmi_memory_domain_bytes', labels)).toBe(128 * 1024 * 1024);
    expect(sample(first, 'virtfleet_vmi_memory_actual_balloon_bytes', labels)).toBe(128 * 1024 * 1024);

    // The guest keeps running (its kernel ticks), so its CPU time grows: scrape until a later
    // reading (the collector shares one for 1 s) says more than the first.
    let after = before!;
    for (const deadline = Date.now() + 60_000; after <= before! && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = sample(await scrape(), 'virtfleet_vmi_cpu_usage_seconds_total', labels) ?? after;
    }
    expect(after).toBeGreaterThan(before!);
  }, 300_000);
});
