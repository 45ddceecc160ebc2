// The binding never blocks the JavaScript thread, keeps each connection's
// calls on its own worker thread, and a hung host stalls nothing but itself.
import { randomUUID } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { readdirSync, promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection, LibvirtError } from '../../../src/hypervisors/libvirt/native/index.js';
import { brokenHost, domainXml, testHost, uniqueName } from './fixtures.js';

function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** Counts turns of the event loop until stopped. */
function immediateTicker(): { ticks: () => number; stop: () => void } {
  let ticks = 0;
  let running = true;
  const tick = (): void => {
    ticks += 1;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return { ticks: () => ticks, stop: () => (running = false) };
}

describe('libvirt binding concurrency (test driver)', () => {
  const hosts = Array.from({ length: 4 }, (_, i) =>
    testHost({ cpus: { sockets: 1, cores: 4, threads: 1, mhz: 2000, model: `host-${i}` }, memoryKiB: 8 * 1024 * 1024 }),
  );

  beforeAll(async () => {
    // Start libuv's thread pool now, so that thread counts below see only ours.
    await fs.readFile('/proc/self/status');
  });
  afterAll(() => {
    for (const host of hosts) host.cleanup();
  });

  it('resolves over a thousand calls in flight at once on several connections, in order per connection', async () => {
    const conns = await Promise.all(hosts.map((h) => LibvirtConnection.open(h.uri)));
    let resolved = 0;
    const note = <T>(p: Promise<T>): Promise<T> =>
      p.then((v) => {
        resolved += 1;
        return v;
      });
    const perConnection = 50;
    const work = conns.flatMap((conn, c) =>
      Array.from({ length: perConnection }, (_, i) => {
        const uuid = randomUUID();
        // define -> start -> state, queued without waiting: each connection
        // runs its calls in order, so the state read sees the started domain.
        const define = note(conn.defineXML(domainXml({ name: `c${c}-vm${i}`, uuid })));
        const start = note(conn.domainCreate(uuid));
        const state = note(conn.domainGetState(uuid));
        const others = [note(conn.getHostname()), note(conn.listAllDomains()), note(conn.getNodeInfo())];
        return Promise.all([define, start, state, ...others]).then(([, , s]) => s);
      }),
    );
    // Every call returned a pending promise: nothing ran on this thread.
    expect(resolved).toBe(0);
    const states = await Promise.all(work);

    expect(states).toHaveLength(hosts.length * perConnection);
    for (const s of states) expect(s).toMatchObject({ state: 'running', reason: 'booted' });
    expect(resolved).toBe(hosts.length * perConnection * 6);
    for (const [i, conn] of conns.entries()) {
      const domains = await conn.listAllDomains();
      expect(domains.filter((d) => d.name.startsWith(`c${i}-`))).toHaveLength(perConnection);
      // Hosts made from definition files are separate: none sees another's domains.
      expect(domains.filter((d) => d.name.startsWith('c') && !d.name.startsWith(`c${i}-`))).toHaveLength(0);
    }
    await Promise.all(conns.map((c) => c.close()));
  });

  it('gives each connection one thread and ends it when the connection closes', async () => {
    const before = threadCount();
    const conns = await Promise.all(hosts.map((h) => LibvirtConnection.open(h.uri)));
    expect(threadCount()).toBe(before + conns.length);
    await Promise.all(conns.map((c) => c.getHostname()));
    await conns[0]!.close();
    expect(threadCount()).toBe(before + conns.length - 1);
    await Promise.all(conns.map((c) => c.close()));
    expect(threadCount()).toBe(before);
  });

  it('ends the thread of a connection whose open failed', async () => {
    const broken = brokenHost();
    const before = threadCount();
    await expect(LibvirtConnection.open(broken.uri)).rejects.toBeInstanceOf(LibvirtError);
    expect(threadCount()).toBe(before);
    broken.cleanup();
  });

  describe('with hosts that accept connections and never answer', () => {
    let server: Server;
    let port = 0;
    const sockets: Socket[] = [];
    let accepted: (n: number) => Promise<void>;

    beforeAll(async () => {
      const waiters: Array<{ n: number; resolve: () => void }> = [];
      server = createServer((socket) => {
        sockets.push(socket);
        for (const w of waiters.filter((w) => sockets.length >= w.n)) w.resolve();
      });
      accepted = (n) =>
        sockets.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      port = address.port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    // The proof that calls never block the JavaScript thread: these opens
    // never return, and everything else goes on meanwhile.
    it('keeps other hosts, Node’s thread pool and the event loop going while calls hang', async () => {
      // More hung hosts than libuv's thread pool has threads (4): with the
      // pool, file I/O and DNS would wait behind them.
      const hung = Array.from({ length: 6 }, () =>
        LibvirtConnection.open(`qemu+tcp://127.0.0.1:${port}/system`).then(
          () => new Error('a host that never answers opened'),
          (e: unknown) => e,
        ),
      );
      await accepted(6);

      const ticker = immediateTicker();
      const conn = await LibvirtConnection.open(hosts[0]!.uri);
      const uuid = randomUUID();
      await conn.defineXML(domainXml({ name: uniqueName('beside-hung'), uuid }));
      await conn.domainCreate(uuid);
      expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running' });
      await conn.close();
      expect((await fs.readFile('/proc/self/status', 'utf8')).length).toBeGreaterThan(0);
      expect((await dns.lookup('localhost')).address).toMatch(/^(127\.|::1)/);
      await new Promise<void>((resolve) => {
        const wait = (): void => (ticker.ticks() >= 100 ? resolve() : void setImmediate(wait));
        wait();
      });
      ticker.stop();

      // The hosts go away: every hung open fails with libvirt's error.
      for (const s of sockets) s.destroy();
      for (const outcome of await Promise.all(hung)) {
        expect(outcome).toBeInstanceOf(LibvirtError);
        expect(outcome).toMatchObject({ domainName: expect.stringMatching(/^VIR_FROM_/) });
      }
    });
  });
});
