// The core loop end to end, as a user drives it: a HostPool of two real
// libvirtd hosts (test/rig), `kubectl apply` of a VM boots the tiny guest
// (its marker read from the console through the binding), `kubectl wait`
// sees it Ready, and `kubectl delete` leaves no domain on either host.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
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

afterAll(() => stack.stop(), 120_000);

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
});
