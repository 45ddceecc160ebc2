// The binding's connection calls against libvirt's built-in test driver.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  LibvirtConnection,
  LibvirtError,
  type CloseEvent,
  libraryVersion,
} from '../../../src/hypervisors/libvirt/native/index.js';
import { brokenHost, testHost } from './fixtures.js';

describe('libvirt connection (test driver)', () => {
  const host = testHost({
    cpus: { sockets: 2, cores: 4, threads: 2, mhz: 2400, model: 'virtfleet-test' },
    memoryKiB: 32 * 1024 * 1024,
  });
  const secured = testHost({
    cpus: { sockets: 1, cores: 2, threads: 1, mhz: 1000, model: 'secured' },
    memoryKiB: 1024 * 1024,
    auth: { username: 'admin', password: 's3cret "quoted" <pw>' },
  });
  let conn: LibvirtConnection;

  beforeAll(async () => {
    conn = await LibvirtConnection.open(host.uri);
  });
  afterAll(async () => {
    await conn.close();
    host.cleanup();
    secured.cleanup();
  });

  it('reports the host CPUs and memory from its definition file', async () => {
    expect(await conn.getNodeInfo()).toEqual({
      model: 'virtfleet-test',
      memoryKiB: 32 * 1024 * 1024,
      cpus: 16,
      mhz: 2400,
      nodes: 1,
      sockets: 2,
      cores: 4,
      threads: 2,
    });
  });

  it('reports driver type, versions, hostname, URI and capabilities', async () => {
    expect(await conn.getType()).toBe('TEST');
    const lib = await conn.getLibVersion();
    expect(lib).toEqual(libraryVersion());
    expect(lib.major).toBeGreaterThanOrEqual(9);
    const hv = await conn.getVersion();
    expect(hv).toEqual({ major: expect.any(Number), minor: expect.any(Number), micro: expect.any(Number) });
    expect((await conn.getHostname()).length).toBeGreaterThan(0);
    expect(await conn.getURI()).toBe(host.uri);
    const caps = await conn.getCapabilities();
    expect(caps).toContain('<capabilities>');
    expect(caps).toContain('<guest>');
  });

  it('reports free memory in bytes', async () => {
    // test:///default has NUMA cells with free memory (a definition file
    // without cells has none, and libvirt reports that as an error).
    const other = await LibvirtConnection.open('test:///default');
    try {
      const free = await other.getFreeMemory();
      expect(free).toBeGreaterThan(0);
      expect(free % 1024).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('is alive, and keepalive is refused by a local driver with its libvirt error', async () => {
    expect(await conn.isAlive()).toBe(true);
    const error = await conn.setKeepAlive(5, 3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LibvirtError);
    expect(error).toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT', code: 3 });
  });

  it('answers credential requests from the caller, never from a terminal', async () => {
    const ok = await LibvirtConnection.open(secured.uri, {
      auth: { username: 'admin', password: 's3cret "quoted" <pw>' },
    });
    expect((await ok.getNodeInfo()).model).toBe('secured');
    await ok.close();

    const wrong = await LibvirtConnection.open(secured.uri, { auth: { username: 'admin', password: 'nope' } }).catch(
      (e: unknown) => e,
    );
    expect(wrong).toBeInstanceOf(LibvirtError);
    expect(wrong).toMatchObject({ codeName: 'VIR_ERR_AUTH_FAILED', domainName: 'VIR_FROM_TEST' });

    const none = await LibvirtConnection.open(secured.uri).catch((e: unknown) => e);
    expect(none).toMatchObject({ codeName: 'VIR_ERR_AUTH_FAILED' });
  });

  it('refuses changes on a read-only connection', async () => {
    const ro = await LibvirtConnection.open('test:///default', { readOnly: true });
    try {
      const [dom] = await ro.listAllDomains();
      expect(dom).toBeDefined();
      await expect(ro.domainSuspend(dom!.uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_OPERATION_DENIED' });
    } finally {
      await ro.close();
    }
  });

  it('rejects an unknown URI scheme and a broken definition file with libvirt errors', async () => {
    // No local driver takes it; which error comes back depends on whether a
    // libvirtd listens on this machine, so only its shape is checked.
    await expect(LibvirtConnection.open('nosuchdriver:///x')).rejects.toBeInstanceOf(LibvirtError);
    const broken = brokenHost();
    try {
      const error = await LibvirtConnection.open(broken.uri).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LibvirtError);
      expect(error).toMatchObject({ codeName: 'VIR_ERR_XML_DETAIL', domainName: 'VIR_FROM_TEST' });
      expect((error as LibvirtError).message).toContain('host.xml');
    } finally {
      broken.cleanup();
    }
  });

  it('runs calls queued before close, rejects calls after it, and reports the close', async () => {
    const c = await LibvirtConnection.open('test:///default');
    const closes: CloseEvent[] = [];
    c.onClose((e) => closes.push(e));
    const before = c.getHostname();
    const closing = c.close();
    expect(c.closed).toBe(true);
    await expect(before).resolves.toEqual(expect.any(String));
    await closing;
    expect(c.close()).toBe(closing);
    const after = await c.getHostname().catch((e: unknown) => e);
    expect(after).toBeInstanceOf(LibvirtError);
    expect(after).toMatchObject({ codeName: 'VIR_ERR_INVALID_CONN', message: 'connection is closed' });
    await expect(c.listAllDomains()).rejects.toMatchObject({ codeName: 'VIR_ERR_INVALID_CONN' });
    expect(closes).toEqual([{ type: 'close', reason: 'client', reasonCode: 3 }]);
  });

  it('rejects bad arguments as promise rejections, not synchronous throws', async () => {
    const call = (conn as unknown as { domainGetState(uuid: unknown): Promise<unknown> }).domainGetState(42);
    // Made by native code in Node's main context, so compared by name, not class.
    await expect(call).rejects.toMatchObject({ name: 'TypeError', message: 'uuid must be a string' });
    await expect(conn.lookupDomainByName('a\0b')).rejects.toThrow(/NUL/);
  });
});
