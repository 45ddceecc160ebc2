// `virtfleet vm console` end to end (issue 14, Done 1): the real kube-apiserver's aggregator,
// `virtfleet api` as its own process, real libvirtd hosts (test/rig) and the tiny guest, whose
// init runs a shell on its console. Driven through a pseudo-terminal as a person would: a
// command typed into the guest's shell, its answer read; after `virtfleet vm migrate` the
// console reaches the guest on its new host. Plus one writer at a time, and 200 sessions opened
// and dropped with the API server's memory flat. The VM has spec.graphics, its pool VNC on each
// host's management network (as `make run`'s pool local): `virtfleet vm vnc` reads QEMU's RFB
// greeting through a local port, before and after the migration.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { connectConsole, ConsoleRefusedError } from '../../src/cli/console.js';
import { runAction } from '../../src/cli/vm.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { defineManagementNetwork, MANAGEMENT_NETWORK } from '../../src/devstack/real-hosts.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { ApiServerProcess } from '../harness/api-server.js';
import { guestImage } from '../rig/guest.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from './harness.js';
import { PtyProcess } from './pty.js';

const POOL = 'rig-console';
const VM = 'demo';
const stack: RigController = new RigController({
  hosts: 2,
  tag: 'console',
  detail: () => `VM: ${JSON.stringify(stack.vm(VM)?.status)}`,
});
let api: ApiServerProcess;

beforeAll(async () => {
  await stack.start();
  api = new ApiServerProcess(stack.info.kubeconfig, stack.info.pki, join(stack.dir, 'api.log'));
  await api.start(stack.client);
  const image = await guestImage();
  for (const host of stack.rig.hosts) await defineManagementNetwork(host.uri, host.interface, host.dir);
  await stack.client.create(
    HOST_POOL,
    hostPool(POOL, { hosts: stack.poolHosts(), graphics: { listen: { network: MANAGEMENT_NETWORK } } }),
  );
  await stack.client.create(VIRTUAL_MACHINE, guestVm(VM, POOL, image, { graphics: {} }));
  await stack.until(() => isRunning(stack.vm(VM)), 120_000, 'demo Running');
}, 300_000);

afterAll(async () => {
  await api?.stop();
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

/** `virtfleet vm console demo` in a pseudo-terminal. */
function consoleCli(...extra: string[]): PtyProcess {
  // prettier-ignore
  return new PtyProcess([process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'vm', 'console', VM, '-n', NAMESPACE,
    '--kubeconfig', stack.info.kubeconfig, ...extra], { cwd: repoRoot() });
}

/** Types a command into the guest's shell and waits for its answer (which the typed line does not contain). */
async function ask(pty: PtyProcess, tag: string): Promise<void> {
  await pty.until(/Escape character is \^\]/, 60_000);
  // A heartbeat line first, as make-run.test.ts waits: typed while the guest's shell still starts,
  // the first characters are lost (seen right after boot: "sh: o: not found").
  await pty.until(/VIRTFLEET-GUEST-HEARTBEAT n=\d+/, 30_000);
  pty.type(`echo ${tag}-$((6*7))-answer\r`);
  await pty.until(new RegExp(`${tag}-42-answer`), 60_000);
}

const apiLog = () => readFileSync(api.logFile, 'utf8');
const count = (text: string, message: string) =>
  text.split('\n').filter((l) => l.includes(`"msg":"${message}"`)).length;

/**
 * `virtfleet vm vnc demo` (in a pseudo-terminal, so Ctrl-C is a keystroke): the first 12 bytes a
 * viewer reads from the local port it prints, then Ctrl-C, which ends it with status 0.
 */
async function vncGreeting(): Promise<string> {
  await stack.until(
    () => {
      const status = stack.vm(VM)?.status;
      return status?.phase === 'Running' && status.graphics?.host === status.host;
    },
    60_000,
    'status.graphics recorded for the current host',
  );
  // prettier-ignore
  const cli = new PtyProcess([process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'vm', 'vnc', VM, '-n', NAMESPACE,
    '--kubeconfig', stack.info.kubeconfig], { cwd: repoRoot() });
  try {
    const [, port] = await cli.until(/on 127\.0\.0\.1:(\d+); connect a viewer:\s+vncviewer 127\.0\.0\.1::\1\s/, 60_000);
    const viewer = connect(Number(port), '127.0.0.1');
    const greeting = await new Promise<string>((resolve, reject) => {
      let got = Buffer.alloc(0);
      viewer.on('data', (data: Buffer) => {
        got = Buffer.concat([got, data]);
        if (got.length >= 12) resolve(got.subarray(0, 12).toString('latin1'));
      });
      viewer.on('error', reject);
      viewer.on('close', () => reject(new Error(`viewer closed after ${got.length} bytes; CLI:\n${cli.output}`)));
    });
    viewer.destroy();
    cli.type('\x03'); // Ctrl-C
    expect(await cli.exited).toBe(0);
    return greeting;
  } finally {
    cli.kill();
  }
}

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  if (!line) throw new Error(`no VmRSS for ${pid}`);
  return Number(line[1]);
}

describe('virtfleet vm console on rig hosts', () => {
  it("types a command into the guest's shell and reads its answer; Ctrl-] leaves", async () => {
    const pty = consoleCli();
    try {
      await ask(pty, 'first');
      pty.type('\x1d');
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
  }, 120_000);

  it("reads QEMU's RFB greeting through virtfleet vm vnc's local port; Ctrl-C stops it", async () => {
    expect(await vncGreeting()).toBe('RFB 003.008\n');
    expect(apiLog()).toMatch(new RegExp(`"host":"${stack.vm(VM)!.status!.host!}"[^\\n]*"msg":"vnc session opened"`));
  }, 120_000);

  it('lets one writer in at a time: a second session is refused with the reason, --force takes over', async () => {
    const first = await connectConsole(stack.client.config, NAMESPACE, VM);
    const firstClosed = new Promise<[number, string]>((resolve) =>
      first.once('close', (code, reason) => resolve([code, reason.toString()])),
    );
    try {
      const refused = await connectConsole(stack.client.config, NAMESPACE, VM).then(
        (ws) => {
          ws.terminate();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ConsoleRefusedError);
      expect((refused as ConsoleRefusedError).code).toBe(409);
      expect((refused as ConsoleRefusedError).message).toMatch(/in use by virtfleet-admin since .*--force/);
      const pty = consoleCli('--force');
      try {
        await ask(pty, 'forced');
        expect(await firstClosed).toEqual([4001, 'console taken over by virtfleet-admin']);
        pty.type('\x1d');
        expect(await pty.exited).toBe(0);
      } finally {
        pty.kill();
      }
    } finally {
      first.terminate();
    }
  }, 120_000);

  it('finds a console held outside virtfleet api (as by virsh console on the host) busy, and --force takes it', async () => {
    const host = stack.rigHost(stack.vm(VM)!.status!.host!);
    const conn = await LibvirtConnection.open(host.uri);
    try {
      const held = await conn.domainOpenConsole(stack.vm(VM)!.metadata.uid ?? '');
      const heldEnded = new Promise<void>((resolve) => held.onEnd(() => resolve()));
      const refused = await connectConsole(stack.client.config, NAMESPACE, VM).then(
        (ws) => {
          ws.terminate();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ConsoleRefusedError);
      expect((refused as ConsoleRefusedError).code).toBe(409);
      expect((refused as ConsoleRefusedError).message).toMatch(/console is open elsewhere.*--force/);
      const forced = await connectConsole(stack.client.config, NAMESPACE, VM, { force: true });
      await heldEnded;
      forced.close();
    } finally {
      await conn.close();
    }
  }, 120_000);

  it('ends a session with the reason when the VM migrates, and a new one reaches the guest on its new host', async () => {
    const from = stack.vm(VM)!.status!.host!;
    const open: WebSocket = await connectConsole(stack.client.config, NAMESPACE, VM);
    const ended = new Promise<[number, string]>((resolve) =>
      open.once('close', (code, reason) => resolve([code, reason.toString()])),
    );
    const lines: string[] = [];
    await runAction(
      'migrate',
      VM,
      { namespace: NAMESPACE, kubeconfig: stack.info.kubeconfig, wait: true, timeout: '240' },
      (line) => lines.push(line),
    );
    const to = stack.vm(VM)!.status!.host!;
    expect(to).not.toBe(from);
    const [code, reason] = await ended;
    expect(code).toBe(4000);
    expect(reason).toMatch(new RegExp(`console ended on host ${from}.*connect again`));
    const pty = consoleCli();
    try {
      await ask(pty, 'moved');
      pty.type('\x1d');
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
    expect(apiLog()).toMatch(new RegExp(`"host":"${to}"[^\\n]*"msg":"console session opened"`));
  }, 400_000);

  it("reads the RFB greeting from the VNC server on the VM's new host after the migration", async () => {
    const host = stack.vm(VM)!.status!.host!;
    expect(await vncGreeting()).toBe('RFB 003.008\n');
    expect(apiLog()).toMatch(new RegExp(`"host":"${host}"[^\\n]*"msg":"vnc session opened"`));
  }, 120_000);

  it('opens and drops 200 sessions with its memory flat and every session closed', async () => {
    const cycle = async () => {
      // force: a dropped session may not have been seen closed yet; take it over.
      const ws = await connectConsole(stack.client.config, NAMESPACE, VM, { force: true });
      ws.terminate();
    };
    for (let i = 0; i < 30; i++) await cycle();
    const before = rssKiB(api.pid);
    for (let i = 0; i < 200; i++) await cycle();
    // Every session the server opened, it closed (dropped or taken over), and its console stream with it.
    await stack.until(
      () => {
        const log = apiLog();
        return count(log, 'console session opened') === count(log, 'console session closed');
      },
      30_000,
      () =>
        `sessions opened ${count(apiLog(), 'console session opened')}, closed ${count(apiLog(), 'console session closed')}`,
    );
    const after = rssKiB(api.pid);
    process.stdout.write(`virtfleet api RSS: ${before} KiB after 30 sessions, ${after} KiB after 200 more\n`);
    // Generous: a leak of the sessions' buffers or streams would grow far past this.
    expect(after - before).toBeLessThan(40 * 1024);
    // And the console is free: a session without force gets in.
    const last = await connectConsole(stack.client.config, NAMESPACE, VM);
    last.terminate();
  }, 300_000);

  it('ends the session with a reason the CLI prints when the host drops, and keeps serving', async () => {
    const host = stack.rigHost(stack.vm(VM)!.status!.host!);
    const pty = consoleCli('--force');
    try {
      await ask(pty, 'before-the-cut');
      // Every packet inside the host's network namespace dropped; the guest keeps running.
      await host.cutLink('iptables');
      try {
        // The API server's keepalive gives the connection up; the session ends naming the host.
        await pty.until(
          /console closed \(4000\): (connection to host rig-\d lost|console stream of host rig-\d failed)/,
          90_000,
        );
        expect(await pty.exited).toBe(1);
        // Other requests are still served: an unknown VM is a 404, not a hang or a 5xx.
        const other = await connectConsole(stack.client.config, NAMESPACE, 'no-such-vm').catch(
          (error: unknown) => error,
        );
        expect((other as ConsoleRefusedError).code).toBe(404);
      } finally {
        await host.restoreLink('iptables');
      }
    } finally {
      pty.kill();
    }
  }, 180_000);
});
