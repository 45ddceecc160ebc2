// Console keystroke → echo latency, through `virtfleet api` behind the aggregator against the
// binding's console stream directly, in one run on one rig guest (issue 14, Done 4). Prints
// figures; passes or fails nothing.
//
//   npx tsx bench/console/console.ts [--keys 200] [--rounds 5]
//
// A rig of one real libvirtd host with the tiny guest (test/rig), its own control plane, the
// controller and `virtfleet api` as child processes (as deployed). A keystroke is one byte the
// guest's tty echoes ('z': no heartbeat line carries one); each is followed by DEL (the tty
// erases it) so the line never fills. Rounds alternate the two paths (libvirt gives a
// console one stream at a time), `--keys` keystrokes per path per round. The aggregated path is
// client → kube-apiserver (TLS, authn) → virtfleet api (TLS, front-proxy cert; the SAR is paid
// once per session, not per key) → the binding → libvirtd → QEMU; the direct path starts at the binding.
import { setTimeout as delay } from 'node:timers/promises';
import type WebSocket from 'ws';
import { connectConsole } from '../../src/cli/console.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { ApiServerProcess } from '../../test/harness/api-server.js';
import { guestVm, hostPool, isRunning, NAMESPACE, RigController } from '../../test/e2e/harness.js';
import { guestImage } from '../../test/rig/guest.js';
import { arg, percentile } from '../common.js';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';

const KEYS = arg('keys', 200);
const ROUNDS = arg('rounds', 5);
const KEY = 'z';
/** DEL, the tty's erase character: removes the 'z' from the line again (echoed as "\b \b"). */
const ERASE = '\x7f';

/** One path to the console: send bytes, hear bytes. */
interface ConsolePath {
  send(data: string): void;
  onData(listener: (data: Buffer) => void): void;
  close(): Promise<void>;
}

/** Keystroke → its echo, `count` times; ms each. */
async function measure(path: ConsolePath, count: number): Promise<number[]> {
  let waiting: { byte: string | undefined; resolve: () => void } | undefined;
  path.onData((data) => {
    if (waiting && (waiting.byte === undefined || data.toString('latin1').includes(waiting.byte))) {
      const { resolve } = waiting;
      waiting = undefined;
      resolve();
    }
  });
  const echo = (byte: string | undefined, sent: string, orAfterMs?: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => (orAfterMs ? resolve() : reject(new Error(`no echo of ${JSON.stringify(sent)} within 5 s`))),
        orAfterMs ?? 5000,
      );
      waiting = {
        byte,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      path.send(sent);
    });
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    await echo(KEY, KEY);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    // Erase it again; its echo (any output) is waited for, at most 1 s, before the next key.
    await echo(undefined, ERASE, 1000);
  }
  return times;
}

const stack = new RigController({ hosts: 1, tag: 'bench-console', controllerProcess: true });
let api: ApiServerProcess | undefined;
try {
  await stack.start();
  api = new ApiServerProcess(stack.info.kubeconfig, stack.info.pki, join(stack.dir, 'api.log'));
  await api.start(stack.client);
  const image = await guestImage();
  await stack.client.create(HOST_POOL, hostPool('bench-console', { hosts: stack.poolHosts() }));
  await stack.client.create(VIRTUAL_MACHINE, guestVm('echo', 'bench-console', image));
  await stack.until(() => isRunning(stack.vm('echo')), 180_000, 'the guest Running');
  const uuid = stack.vm('echo')!.metadata.uid ?? '';
  const conn = await LibvirtConnection.open(stack.rig.hosts[0]!.uri);
  // Let the guest's boot finish (its init starts the console shell before the ready marker).
  await delay(10_000);

  const direct = async (): Promise<ConsolePath> => {
    const stream = await conn.domainOpenConsole(uuid, { force: true });
    return {
      send: (data) => void stream.write(data),
      onData: (listener) => stream.onData(listener),
      close: () => stream.close(),
    };
  };
  const aggregated = async (): Promise<ConsolePath> => {
    const ws: WebSocket = await connectConsole(stack.client.config, NAMESPACE, 'echo', { force: true });
    return {
      send: (data) => ws.send(Buffer.from(data, 'latin1')),
      onData: (listener) => ws.on('message', (data: Buffer) => listener(data)),
      close: async () => {
        const closed = new Promise((resolve) => ws.once('close', resolve));
        ws.close();
        await closed;
      },
    };
  };

  const results = { direct: [] as number[], aggregated: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, open] of [
      ['direct', direct],
      ['aggregated', aggregated],
    ] as const) {
      const path = await open();
      try {
        await measure(path, 5); // warm-up: connection, JIT
        results[name].push(...(await measure(path, KEYS)));
      } finally {
        await path.close();
      }
      await delay(200);
    }
  }
  await conn.close();

  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const line = (name: string, values: number[]) =>
    `  ${name.padEnd(40)} p50 ${ms(percentile(values, 50))}  p99 ${ms(percentile(values, 99))}  (n=${values.length})`;
  process.stdout.write(
    `\nconsole keystroke → echo on a rig guest (TCG), ${ROUNDS} alternating rounds of ${KEYS} keys per path; ` +
      `${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}\n` +
      `${line('binding stream (direct)', results.direct)}\n` +
      `${line('virtfleet vm console path (aggregated)', results.aggregated)}\n` +
      `  added by aggregator + virtfleet api:  p50 ${ms(percentile(results.aggregated, 50) - percentile(results.direct, 50))}, ` +
      `p99 ${ms(percentile(results.aggregated, 99) - percentile(results.direct, 99))} (aim: under 5 ms p50)\n`,
  );
} finally {
  await api?.stop();
  await stack.deleteVms(60_000);
  await stack.stop();
}
