// The connection pool and the libvirt Hypervisor driver against test-driver hosts, one
// definition file per host: one connection per URI, events per host, reconnects that keep
// subscribers, backoff while a host is down, close-all, and a domain's whole lifecycle.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { buildDomainXml } from '../../../src/hypervisors/domain-xml.js';
import type { HostEvent } from '../../../src/hypervisors/hypervisor.js';
import {
  HostUnavailableError,
  LibvirtConnectionPool,
  reconnectDelay,
  type ConnectionPoolOptions,
  type Connector,
  type LinkEvent,
} from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { kvmInput } from '../../unit/domain-xml-matrix.js';
import { lifecycle, nextEvent, testHosts, type TestHosts } from './test-hosts.js';

/** Opens real connections, remembering each; `fail` makes chosen attempts fail first. */
function recordingConnector(fail: (uri: string, attempt: number) => boolean = () => false) {
  const opened: LibvirtConnection[] = [];
  const attempts: string[] = [];
  const connect: Connector = async (uri, options) => {
    attempts.push(uri);
    if (fail(uri, attempts.filter((u) => u === uri).length)) throw new Error(`simulated: ${uri} does not answer`);
    const connection = await LibvirtConnection.open(uri, options);
    opened.push(connection);
    return connection;
  };
  return { connect, opened, attempts };
}

/** Resolves with the first pool event of `uri` that matches. */
function nextLinkEvent(
  pool: LibvirtConnectionPool,
  uri: string,
  match: (event: LinkEvent) => boolean,
): Promise<LinkEvent> {
  return new Promise((resolve) => {
    const off = pool.subscribe(uri, (event) => {
      if (match(event)) {
        off();
        resolve(event);
      }
    });
  });
}

function describeEvent(event: LinkEvent): string {
  if (event.type === 'disconnected') return `disconnected:${event.reason}`;
  if (event.type === 'domain')
    return `domain:${event.event.type === 'lifecycle' ? event.event.event : event.event.type}`;
  return event.type;
}

function domainXml(uid = randomUUID()) {
  return buildDomainXml(kvmInput({ uid, name: `vm-${uid.slice(0, 8)}` }));
}

const FAST_RECONNECT = { initialMs: 1, maxMs: 4, jitter: 0.5 };

describe('reconnectDelay', () => {
  it('doubles from the initial delay up to the maximum, and jitter only shortens it', () => {
    const options = { initialMs: 100, maxMs: 1000, jitter: 0.25 };
    expect([0, 1, 2, 3, 4, 60].map((n) => reconnectDelay(n, options, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect([0, 1, 4].map((n) => reconnectDelay(n, options, () => 1))).toEqual([75, 150, 750]);
    expect(reconnectDelay(2, options, () => 0.5)).toBe(350);
  });
});

describe('LibvirtConnectionPool (test driver)', () => {
  let hosts: TestHosts;
  let hostA: string;
  let hostB: string;
  const pools: LibvirtConnectionPool[] = [];

  function newPool(options: ConnectionPoolOptions = {}): LibvirtConnectionPool {
    const pool = new LibvirtConnectionPool({ reconnect: FAST_RECONNECT, ...options });
    pools.push(pool);
    return pool;
  }

  beforeAll(() => {
    hosts = testHosts();
    hostA = hosts.host('a', { cpus: 2 });
    hostB = hosts.host('b', { cpus: 6 });
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.closeAll()));
  });
  afterAll(() => hosts.cleanup());

  it('opens nothing until a host is used, then one connection per URI', async () => {
    const { connect, opened } = recordingConnector();
    const pool = newPool({ connect });
    expect(pool.status(hostA)).toBeUndefined();
    expect(opened).toHaveLength(0);

    const [a1, a2, b1, a3, b2] = await Promise.all([
      pool.connection(hostA),
      pool.connection(hostA),
      pool.connection(hostB),
      pool.connection(hostA),
      pool.connection(hostB),
    ]);
    expect(opened).toHaveLength(2);
    expect(a2).toBe(a1);
    expect(a3).toBe(a1);
    expect(b2).toBe(b1);
    expect(b1).not.toBe(a1);
    expect((await a1.getNodeInfo()).cpus).toBe(2);
    expect((await b1.getNodeInfo()).cpus).toBe(6);
    expect(pool.status(hostA)?.state).toBe('connected');
  });

  it('treats keepalive refused by the test driver as not available, not as a failure', async () => {
    const pool = newPool({ keepAlive: { intervalSeconds: 1, count: 2 } });
    await pool.connection(hostA);
    expect(pool.status(hostA)).toMatchObject({ state: 'connected', keepAlive: 'unsupported' });

    const quiet = newPool({ keepAlive: false });
    await quiet.connection(hostA);
    expect(quiet.status(hostA)?.keepAlive).toBe('off');
  });

  it('opens with the credentials the callback gives for the URI', async () => {
    const secured = hosts.host('secured', { auth: { username: 'fleet', password: 's3cret' } });
    const asked: string[] = [];
    const pool = newPool({
      credentials: (uri) => {
        asked.push(uri);
        return { username: 'fleet', password: 's3cret' };
      },
    });
    const connection = await pool.connection(secured);
    expect(await connection.isAlive()).toBe(true);
    expect(asked).toEqual([secured]);

    const wrong = newPool({ credentials: () => ({ username: 'fleet', password: 'wrong' }) });
    const refused = await wrong.connection(secured).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HostUnavailableError);
    expect((refused as HostUnavailableError).cause).toMatchObject({
      name: 'LibvirtError',
      codeName: 'VIR_ERR_AUTH_FAILED',
    });
    expect(wrong.status(secured)?.state).toBe('waiting');
  });

  it("delivers each host's domain events only to that host's subscribers", async () => {
    const pool = newPool();
    const seenA: string[] = [];
    const seenB: string[] = [];
    pool.subscribe(hostA, (e) => e.type === 'domain' && seenA.push(e.event.domain.uuid));
    pool.subscribe(hostB, (e) => e.type === 'domain' && seenB.push(e.event.domain.uuid));
    const onA = domainXml();
    const onB = domainXml();

    const definedA = nextLinkEvent(pool, hostA, (e) => e.type === 'domain' && e.event.domain.uuid === onA.uuid);
    await (await pool.connection(hostA)).defineXML(onA.xml);
    await definedA;
    const definedB = nextLinkEvent(pool, hostB, (e) => e.type === 'domain' && e.event.domain.uuid === onB.uuid);
    await (await pool.connection(hostB)).defineXML(onB.xml);
    await definedB;

    expect(seenA).toEqual([onA.uuid]);
    expect(seenB).toEqual([onB.uuid]);
  });

  it('reconnects after the connection closes, and subscribers stay subscribed', async () => {
    const { connect, opened } = recordingConnector();
    const pool = newPool({ connect });
    const events: string[] = [];
    pool.subscribe(hostA, (e) => events.push(describeEvent(e)));
    const first = await pool.connection(hostA);
    expect(events).toEqual(['connected']);

    const back = new Promise<void>((resolve) => {
      const off = pool.subscribe(hostA, (e) => {
        if (e.type === 'connected') {
          off();
          resolve();
        }
      });
    });
    // Closing the connection under the pool stands in for a host that went away.
    await first.close();
    await back;

    const second = await pool.connection(hostA);
    expect(second).not.toBe(first);
    expect(first.closed).toBe(true);
    expect(opened).toHaveLength(2);
    expect(pool.status(hostA)).toMatchObject({ state: 'connected', failures: 0 });

    const xml = domainXml();
    const defined = nextLinkEvent(pool, hostA, (e) => e.type === 'domain' && e.event.domain.uuid === xml.uuid);
    await second.defineXML(xml.xml);
    await defined;
    expect(events).toEqual(['connected', 'disconnected:client', 'connected', 'domain:defined']);
  });

  it('retries an unreachable host with backoff, failing calls at once meanwhile', async () => {
    const { connect, attempts } = recordingConnector((uri, attempt) => uri === hostA && attempt <= 3);
    const pool = newPool({ connect });
    const events: string[] = [];
    const connected = nextLinkEvent(pool, hostA, (e) => e.type === 'connected');
    pool.subscribe(hostA, (e) => events.push(describeEvent(e)));

    const firstTry = await pool.connection(hostA).catch((error: unknown) => error);
    expect(firstTry).toBeInstanceOf(HostUnavailableError);
    expect(pool.status(hostA)).toMatchObject({ state: 'waiting', failures: 1 });
    // While waiting, a call fails at once and makes no attempt of its own.
    const meanwhile = await pool.connection(hostA).catch((error: unknown) => error);
    expect(meanwhile).toMatchObject({ name: 'HostUnavailableError', retryAt: expect.any(Number) });
    expect(attempts).toHaveLength(1);

    await connected;
    expect(attempts).toEqual([hostA, hostA, hostA, hostA]);
    // Subscribers hear of the change of state, not of every failed attempt.
    expect(events).toEqual(['disconnected:open-failed', 'connected']);
    expect(pool.status(hostA)).toMatchObject({ state: 'connected', failures: 0 });
  });

  it('closeAll closes every connection, cancels reconnects and refuses later calls', async () => {
    const { connect, opened } = recordingConnector((uri) => uri === hostB);
    const pool = newPool({ connect, reconnect: { initialMs: 60_000 } });
    const events: string[] = [];
    pool.subscribe(hostA, (e) => events.push(describeEvent(e)));
    await pool.connection(hostA);
    await pool.connection(hostB).catch(() => undefined);
    expect(pool.status(hostB)?.state).toBe('waiting');

    await pool.closeAll();
    expect(opened.every((connection) => connection.closed)).toBe(true);
    expect(pool.status(hostA)?.state).toBe('closed');
    expect(pool.status(hostB)?.state).toBe('closed');
    expect(events).toEqual(['connected', 'disconnected:client']);
    await expect(pool.connection(hostA)).rejects.toBeInstanceOf(HostUnavailableError);
    await expect(pool.closeAll()).resolves.toBeUndefined();
  });

  it('release stops serving one host and leaves the others', async () => {
    const pool = newPool();
    const a = await pool.connection(hostA);
    const b = await pool.connection(hostB);
    await pool.release(hostA);
    expect(a.closed).toBe(true);
    expect(b.closed).toBe(false);
    expect(pool.uris()).toEqual([hostB]);
  });
});

describe('LibvirtHypervisor (test driver)', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let hypervisor: LibvirtHypervisor;

  beforeAll(() => {
    hosts = testHosts();
    pool = new LibvirtConnectionPool({ reconnect: FAST_RECONNECT });
    hypervisor = new LibvirtHypervisor(pool, hosts.host('driver', { cpus: 8, memoryKiB: 16 * 1024 * 1024 }));
  });
  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  it('reads host facts', async () => {
    const facts = await hypervisor.facts();
    expect(facts).toMatchObject({
      uri: hypervisor.uri,
      type: 'test',
      driver: 'TEST',
      cpu: { count: 8, cores: 8, sockets: 1, threads: 1 },
      memoryBytes: 16 * 1024 ** 3,
      // A definition file without NUMA cells cannot tell.
      freeMemoryBytes: undefined,
    });
    expect(facts.libvirtVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(facts.hostname).not.toBe('');
    expect(facts.capabilities.guests.length).toBeGreaterThan(0);
    expect(facts.capabilities.kvm).toBe(false);
  });

  it('drives a domain through define, start, suspend, resume, shutdown, destroy and undefine, with events', async () => {
    const { xml, uuid, name } = domainXml();
    const seen: string[] = [];
    const off = hypervisor.subscribe((e) => {
      if (e.type === 'lifecycle' && e.domain.uuid === uuid) seen.push(`${e.event}/${e.detail}`);
    });

    const step = async (event: string, action: () => Promise<unknown>) => {
      const arrived = nextEvent(hypervisor, lifecycle(uuid, event));
      await action();
      return arrived;
    };

    await step('defined', () => hypervisor.ensureDefined(xml));
    expect(await hypervisor.state(uuid)).toMatchObject({ uuid, name, id: null, state: 'shutoff' });
    await step('started', () => hypervisor.start(uuid));
    expect(await hypervisor.state(uuid)).toMatchObject({ state: 'running', reason: 'booted', id: expect.any(Number) });
    await step('suspended', () => hypervisor.suspend(uuid));
    expect(await hypervisor.state(uuid)).toMatchObject({ state: 'paused', reason: 'user' });
    await step('resumed', () => hypervisor.resume(uuid));
    expect((await hypervisor.state(uuid)).state).toBe('running');
    await step('stopped', () => hypervisor.shutdown(uuid));
    expect(await hypervisor.state(uuid)).toMatchObject({ state: 'shutoff', reason: 'shutdown' });
    await step('started', () => hypervisor.start(uuid));
    await step('stopped', () => hypervisor.destroy(uuid, { graceful: true }));
    expect(await hypervisor.state(uuid)).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    expect((await hypervisor.listDomains()).map((d) => d.uuid)).toContain(uuid);
    await step('undefined', () => hypervisor.undefine(uuid));
    off();

    expect(seen).toEqual([
      'defined/added',
      'started/booted',
      'suspended/paused',
      'resumed/unpaused',
      'stopped/shutdown',
      'started/booted',
      'stopped/destroyed',
      'undefined/removed',
    ]);
    expect(await hypervisor.lookup(uuid)).toBeUndefined();
    expect((await hypervisor.listDomains()).map((d) => d.uuid)).not.toContain(uuid);
  });

  it('defines idempotently: the same XML twice is one domain, updated', async () => {
    const { xml, uuid, name } = domainXml();
    // Events trail the calls that caused them: wait for each by its detail.
    const added = nextEvent(hypervisor, (e) => lifecycle(uuid, 'defined')(e) && e.detail === 'added');
    const updated = nextEvent(hypervisor, (e) => lifecycle(uuid, 'defined')(e) && e.detail === 'updated');
    const first = await hypervisor.ensureDefined(xml);
    const second = await hypervisor.ensureDefined(xml);
    expect(second).toEqual(first);
    expect(first).toEqual({ uuid, name });
    await added;
    await updated;
    expect((await hypervisor.listDomains()).filter((d) => d.uuid === uuid)).toHaveLength(1);
    await hypervisor.undefine(uuid);
  });

  it('reports a missing domain as not-found, and lookup as undefined', async () => {
    const missing = randomUUID();
    expect(await hypervisor.lookup(missing)).toBeUndefined();
    await expect(hypervisor.start(missing)).rejects.toMatchObject({
      name: 'HypervisorError',
      kind: 'not-found',
      host: hypervisor.uri,
    });
    await expect(hypervisor.state(missing)).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('reports a host it cannot reach as unreachable, with the reason', async () => {
    const down = new LibvirtConnectionPool({
      reconnect: { initialMs: 60_000 },
      connect: () => Promise.reject(new Error('simulated: no route to host')),
    });
    const unreachable = new LibvirtHypervisor(down, 'qemu+tcp://192.0.2.1/system');
    const events: HostEvent[] = [];
    unreachable.subscribe((e) => events.push(e));
    await expect(unreachable.facts()).rejects.toMatchObject({
      kind: 'unreachable',
      message: expect.stringContaining('no route to host'),
    });
    expect(events).toEqual([{ type: 'disconnected', reason: 'open-failed', message: 'simulated: no route to host' }]);
    await down.closeAll();
    await expect(unreachable.listDomains()).rejects.toMatchObject({ kind: 'unreachable' });
  });
});
