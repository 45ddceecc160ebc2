// The TCP and HTTP probes (src/controllers/health.ts) against real servers on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { httpProbe, probeOnce, tcpProbe } from '../../src/controllers/health.js';
import type { Hypervisor } from '../../src/hypervisors/hypervisor.js';

let tcp: Server;
let http: HttpServer;
let tcpPort = 0;
let httpPort = 0;
/** A port nothing listens on: a server opened and closed. */
let closedPort = 0;

beforeAll(async () => {
  tcp = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  tcpPort = (tcp.address() as AddressInfo).port;
  http = createHttpServer((request, response) => {
    const status = request.url === '/healthz' ? 200 : request.url === '/moved' ? 302 : 503;
    response.writeHead(status, status === 302 ? { location: '/healthz' } : {}).end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpPort = (http.address() as AddressInfo).port;
  const spare = createServer();
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
  closedPort = (spare.address() as AddressInfo).port;
  await new Promise<void>((resolve) => spare.close(() => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => tcp.close(() => resolve()));
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

describe('tcpProbe', () => {
  it('succeeds when something accepts the connection', async () => {
    expect(await tcpProbe('127.0.0.1', tcpPort, 1000)).toEqual({
      ok: true,
      message: `tcp 127.0.0.1:${tcpPort}: connected`,
    });
  });
  it('fails with the reason when nothing listens', async () => {
    expect(await tcpProbe('127.0.0.1', closedPort, 1000)).toEqual({
      ok: false,
      message: `tcp 127.0.0.1:${closedPort}: ECONNREFUSED`,
    });
  });
});

describe('httpProbe', () => {
  it('is healthy on 2xx and 3xx, not on 5xx', async () => {
    expect(await httpProbe('127.0.0.1', httpPort, '/healthz', 'HTTP', 1000)).toEqual({
      ok: true,
      message: `http://127.0.0.1:${httpPort}/healthz: HTTP 200`,
    });
    expect((await httpProbe('127.0.0.1', httpPort, '/moved', 'HTTP', 1000)).ok).toBe(true);
    expect(await httpProbe('127.0.0.1', httpPort, '/broken', 'HTTP', 1000)).toEqual({
      ok: false,
      message: `http://127.0.0.1:${httpPort}/broken: HTTP 503`,
    });
  });
  it('fails when nothing listens', async () => {
    expect(await httpProbe('127.0.0.1', closedPort, '/', 'HTTP', 1000)).toEqual({
      ok: false,
      message: `http://127.0.0.1:${closedPort}/: ECONNREFUSED`,
    });
  });
});

describe('probeOnce', () => {
  const hypervisor = {} as Hypervisor;
  const check = { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 };
  it('fails without an address, naming what is missing (no traffic sent)', async () => {
    expect(await probeOnce({ ...check, tcp: { port: 22 } }, { address: undefined, uid: 'u', hypervisor })).toEqual({
      ok: false,
      message: 'no address known for the guest (status.addresses is empty), cannot probe port 22',
    });
  });
  it('probes the address with the check it is given', async () => {
    expect(
      (
        await probeOnce(
          { ...check, http: { port: httpPort, path: '/healthz', scheme: 'HTTP' } },
          { address: '127.0.0.1', uid: 'u', hypervisor },
        )
      ).ok,
    ).toBe(true);
  });
});
