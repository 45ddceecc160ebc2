// The install endpoint on its own: tokens, URLs, and which requests get a Kickstart (only the
// right token of a VM that installs, by GET) and which a 404 that says nothing about why; the
// installer's boot arguments; and the installer media cache's naming and staging, against a
// fake host.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { InstallMedia, installerVolumeName, validatorOf } from '../../src/controllers/install/media.js';
import { ensurePki } from '../../src/devstack/pki.js';
import type { Hypervisor, NewVolume, VolumeStatus } from '../../src/hypervisors/hypervisor.js';
import { installerCmdline, installerMedia, tokenInCmdline } from '../../src/provisioning/install-boot.js';
import {
  InstallServer,
  installUrlBase,
  isToken,
  kickstartPath,
  newToken,
  parseKickstartPath,
  redactKickstartUrl,
  tokenHash,
  tokenMatches,
  type KickstartAnswer,
} from '../../src/provisioning/install-server.js';
import { captureLogs } from '../harness/logs.js';

const UID = '0b8e6a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const OTHER_UID = '7f000001-aaaa-4bbb-8ccc-dddddddddddd';
const KICKSTART = 'text\nrootpw --iscrypted $6$salt$hash\npoweroff\n';

describe('tokens', () => {
  it('are 32 random bytes in base64url, different every time', () => {
    const tokens = new Set(Array.from({ length: 100 }, newToken));
    expect(tokens.size).toBe(100);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
      expect(isToken(token)).toBe(true);
    }
  });

  it('are compared by their sha256, whatever the length presented', () => {
    const token = newToken();
    const hash = tokenHash(token);
    expect(tokenMatches(hash, token)).toBe(true);
    expect(tokenMatches(hash, newToken())).toBe(false);
    expect(tokenMatches(hash, token.slice(0, 42))).toBe(false);
    expect(tokenMatches(hash, `${token}A`)).toBe(false);
    expect(tokenMatches(hash, '')).toBe(false);
  });
});

describe('Kickstart URLs', () => {
  const token = newToken();

  it('are /ks/<uid>/<token>, and nothing else parses', () => {
    expect(parseKickstartPath(kickstartPath(UID, token))).toEqual({ uid: UID, token });
    for (const path of [
      `/ks/${UID}`,
      `/ks/${UID}/`,
      `/ks/${UID}/${token}/`,
      `/ks/${UID}/${token}/x`,
      `/ks/${UID.toUpperCase()}/${token}`,
      `/ks/not-a-uid/${token}`,
      `/ks/${UID}/${token.slice(1)}`,
      `/ks/${UID}/${token.slice(1)}=`,
      `/ks/${UID}/..%2F${token.slice(5)}`,
      `/KS/${UID}/${token}`,
      `//ks/${UID}/${token}`,
      `/x/ks/${UID}/${token}`,
    ]) {
      expect({ path, parsed: parseKickstartPath(path) }).toEqual({ path, parsed: undefined });
    }
  });

  it('are shown without their token', () => {
    expect(redactKickstartUrl(`http://10.0.0.2:8082/ks/${UID}/${token}`)).toBe(`http://10.0.0.2:8082/ks/${UID}/…`);
    expect(redactKickstartUrl(`inst.ks=http://h/base/ks/${UID}/${token} inst.text`)).toBe(
      `inst.ks=http://h/base/ks/${UID}/… inst.text`,
    );
  });

  it('start with the URL base guests use: given, or the scheme and the bound address', () => {
    expect(installUrlBase({ address: '10.0.0.2:8082', tls: false })).toBe('http://10.0.0.2:8082');
    expect(installUrlBase({ address: '10.0.0.2:8082', tls: true })).toBe('https://10.0.0.2:8082');
    expect(installUrlBase({ address: '127.0.0.1:0', tls: false }, 41234)).toBe('http://127.0.0.1:41234');
    expect(installUrlBase({ address: '[fd00::2]:8082', tls: false })).toBe('http://[fd00::2]:8082');
    expect(installUrlBase({ address: ':8082', urlBase: 'http://203.0.113.7:30082/', tls: false })).toBe(
      'http://203.0.113.7:30082',
    );
    expect(installUrlBase({ address: ':8082', urlBase: 'https://install.example/virtfleet', tls: true })).toBe(
      'https://install.example/virtfleet',
    );
    expect(() => installUrlBase({ address: ':8082', tls: false })).toThrow(
      /listens on every address.*--install-url-base/,
    );
    expect(() => installUrlBase({ address: '0.0.0.0:8082', tls: false })).toThrow(/--install-url-base/);
    expect(() => installUrlBase({ address: ':8082', urlBase: 'http://h/a b', tls: false })).toThrow(/is not an http/);
    expect(() => installUrlBase({ address: ':8082', urlBase: 'http://h/?x=$(id)', tls: false })).toThrow(
      /is not an http/,
    );
    expect(() => installUrlBase({ address: ':8082', urlBase: 'ftp://h', tls: false })).toThrow(/is not an http/);
  });
});

describe("the installer's boot", () => {
  const tree = 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/';

  it('takes the kernel and initrd from the tree unless the profile names them', () => {
    expect(installerMedia({ installTree: tree, boot: { method: 'kernel' } })).toEqual({
      kernelUrl: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/images/pxeboot/vmlinuz',
      initrdUrl: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/images/pxeboot/initrd.img',
    });
    expect(
      installerMedia({ installTree: tree, boot: { method: 'pxe', kernelUrl: 'http://m/k', initrdUrl: 'http://m/i' } }),
    ).toEqual({ kernelUrl: 'http://m/k', initrdUrl: 'http://m/i' });
  });

  it("boots with inst.ks, the tree, a text install on the serial console, and the profile's arguments", () => {
    const url = `http://10.0.0.2:8082/ks/${UID}/${newToken()}`;
    expect(installerCmdline({ installTree: tree, boot: { method: 'kernel' } }, url)).toBe(
      `inst.ks=${url} inst.repo=${tree} inst.text console=ttyS0`,
    );
    expect(
      installerCmdline(
        { installTree: tree, boot: { method: 'kernel', extraArgs: 'console=ttyS1,115200 inst.text  ip=dhcp' } },
        url,
      ),
    ).toBe(`inst.ks=${url} inst.repo=${tree} console=ttyS1,115200 inst.text ip=dhcp`);
    // An NFS tree is left to the Kickstart's url line.
    expect(installerCmdline({ installTree: 'nfs://10.0.0.1/export/rocky', boot: { method: 'kernel' } }, url)).toBe(
      `inst.ks=${url} inst.text console=ttyS0`,
    );
  });

  it('gives its token back from a command line made for the same VM only', () => {
    const token = newToken();
    const cmdline = installerCmdline(
      { installTree: tree, boot: { method: 'kernel' } },
      `http://lb.example/virtfleet/ks/${UID}/${token}`,
    );
    expect(tokenInCmdline(cmdline, UID)).toBe(token);
    expect(tokenInCmdline(cmdline, OTHER_UID)).toBeUndefined();
    expect(tokenInCmdline('console=ttyS0 root=/dev/vda1', UID)).toBeUndefined();
    expect(tokenInCmdline(`inst.ks=http://h/ks/${UID}/${token}?x=1`, UID)).toBeUndefined();
    expect(tokenInCmdline(`inst.ks=http://h/ks/${UID}/short`, UID)).toBeUndefined();
  });
});

// ---- the server ---------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: string;
}

function get(url: string, options: { method?: string; ca?: Buffer } = {}): Promise<Reply> {
  const parsed = new URL(url);
  const send = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: options.method ?? 'GET', ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function running(server: InstallServer): Promise<{ stop: () => Promise<void>; base: string }> {
  const abort = new AbortController();
  const done = server.run(abort.signal);
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      const state = server.status();
      if (state.kind === 'listening') resolve();
      if (state.kind === 'failed') reject(new Error(state.message));
    };
    server.onStateChange(check);
    check();
  });
  const state = server.status();
  return {
    base: state.kind === 'listening' ? state.urlBase : '',
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

describe('the install endpoint', () => {
  const logs = captureLogs('debug');
  const asked: Array<{ uid: string; client: string }> = [];
  let answer: KickstartAnswer = { status: 'ok', text: KICKSTART };
  const server = new InstallServer({ address: '127.0.0.1:0', logger: logs.logger });
  server.serveFrom(async (uid, client) => {
    asked.push({ uid, client });
    return answer;
  });
  let stop: () => Promise<void>;
  let base: string;
  let token: string;

  beforeAll(async () => {
    ({ stop, base } = await running(server));
    token = server.issue(UID);
  });

  afterAll(async () => {
    await stop();
  });

  afterEach(() => {
    answer = { status: 'ok', text: KICKSTART };
  });

  it('serves the VM its Kickstart at its URL, and asks the controller for it each time', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.urlFor(UID, token)).toBe(`${base}/ks/${UID}/${token}`);
    expect(await get(server.urlFor(UID, token))).toEqual({ status: 200, body: KICKSTART });
    expect(asked.at(-1)).toEqual({ uid: UID, client: '127.0.0.1' });
  });

  it('answers every other request with the same 404, without asking the controller', async () => {
    const before = asked.length;
    const other = server.issue(OTHER_UID);
    const notFound = { status: 404, body: 'not found\n' };
    for (const url of [
      `${base}/ks/${UID}/${newToken()}`, // wrong token
      `${base}/ks/${UID}/${other}`, // another VM's token
      `${base}/ks/${OTHER_UID}/${token}`,
      `${base}/ks/${'1'.repeat(8)}-1111-4111-8111-111111111111/${token}`, // unknown VM
      `${base}/ks/${UID}/${token.slice(0, 42)}`,
      `${base}/ks/${UID}/${token}/`,
      `${base}/ks/${UID}/${token}?debug=1`,
      `${base}/ks/${UID}`,
      `${base}/`,
      `${base}/healthz`,
    ]) {
      expect({ url: redactKickstartUrl(url), reply: await get(url) }).toEqual({
        url: redactKickstartUrl(url),
        reply: notFound,
      });
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
      const reply = await get(server.urlFor(UID, token), { method });
      expect({ method, status: reply.status }).toEqual({ method, status: 404 });
    }
    expect(asked.length).toBe(before);
    server.revoke(OTHER_UID);
  });

  it('404s once the token is revoked, or when the controller says the VM no longer installs', async () => {
    const url = server.urlFor(UID, token);
    answer = { status: 'gone' };
    expect(await get(url)).toEqual({ status: 404, body: 'not found\n' });
    answer = { status: 'unavailable' };
    expect(await get(url)).toEqual({ status: 503, body: 'unavailable\n' });
    server.revoke(UID);
    answer = { status: 'ok', text: KICKSTART };
    expect(await get(url)).toEqual({ status: 404, body: 'not found\n' });
    // A token found on the host after a restart is taken back.
    expect(server.adopt(UID, 'not a token')).toBe(false);
    expect(server.adopt(UID, token)).toBe(true);
    expect(await get(url)).toEqual({ status: 200, body: KICKSTART });
  });

  it('logs requests without the token and never the file', () => {
    const text = JSON.stringify(logs.lines());
    expect(text).toContain(`/ks/${UID}/…`);
    expect(text).not.toContain(token);
    expect(text).not.toContain('rootpw');
  });
});

describe('the install endpoint over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-install-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves HTTPS with the given certificate, and its URLs say https', async () => {
    const pki = await ensurePki(dir);
    const server = new InstallServer({
      address: '127.0.0.1:0',
      tls: { certFile: pki.servingCert, keyFile: pki.servingKey },
      logger: captureLogs().logger,
    });
    server.serveFrom(async () => ({ status: 'ok', text: KICKSTART }));
    const { stop, base } = await running(server);
    try {
      expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const token = server.issue(UID);
      expect(await get(server.urlFor(UID, token), { ca: readFileSync(pki.caCert) })).toEqual({
        status: 200,
        body: KICKSTART,
      });
      expect((await get(`${base}/ks/${UID}/${newToken()}`, { ca: readFileSync(pki.caCert) })).status).toBe(404);
    } finally {
      await stop();
    }
  });

  it('refuses to start without an address guests can use', () => {
    expect(() => new InstallServer({ address: ':8082', logger: captureLogs().logger })).toThrow(/--install-url-base/);
  });

  it('reports a port it cannot listen on', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const server = new InstallServer({
      address: `127.0.0.1:${(taken.address() as AddressInfo).port}`,
      logger: captureLogs().logger,
    });
    await expect(server.run(new AbortController().signal)).rejects.toThrow(/EADDRINUSE/);
    expect(server.status()).toMatchObject({ kind: 'failed', message: expect.stringMatching(/EADDRINUSE/) });
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  });
});

// ---- the installer media cache ------------------------------------------------------------------

/** A host with one directory pool, in memory, recording what was asked. */
function fakeHost(options: { uploadFails?: boolean } = {}) {
  const volumes = new Map<string, { capacityBytes: number; data?: Buffer }>();
  const calls: string[] = [];
  const status = (name: string): VolumeStatus => ({
    pool: 'vf',
    name,
    path: `/pool/${name}`,
    format: 'raw',
    capacityBytes: volumes.get(name)!.capacityBytes,
    allocationBytes: 0,
  });
  const host = {
    uri: 'test:///fake',
    volume: async (_pool: string, name: string) => (volumes.has(name) ? status(name) : undefined),
    createVolume: async (_pool: string, volume: NewVolume) => {
      calls.push(`create ${volume.name}`);
      volumes.set(volume.name, { capacityBytes: volume.capacityBytes });
      return status(volume.name);
    },
    uploadVolume: async (_pool: string, name: string, source: string | Buffer) => {
      calls.push(`upload ${name}`);
      if (options.uploadFails) throw new Error('this host has no streams');
      const data = typeof source === 'string' ? readFileSync(source) : source;
      volumes.get(name)!.data = data;
      return data.length;
    },
    cloneVolume: async (_pool: string, volume: NewVolume, from: { pool: string; name: string }) => {
      calls.push(`clone ${from.name} ${volume.name}`);
      volumes.set(volume.name, { ...volumes.get(from.name)! });
      return status(volume.name);
    },
    deleteVolume: async (_pool: string, name: string) => {
      if (volumes.has(name)) calls.push(`delete ${name}`);
      return volumes.delete(name);
    },
  };
  return { hypervisor: host as unknown as Hypervisor, volumes, calls };
}

describe('installer media', () => {
  let server: Server;
  let base: string;
  const served: string[] = [];
  const files: Record<string, { body: Buffer; etag?: string }> = {
    '/tree/images/pxeboot/vmlinuz': { body: Buffer.alloc(3000, 1), etag: '"k1"' },
    '/tree/images/pxeboot/initrd.img': { body: Buffer.alloc(5000, 2), etag: '"i1"' },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      served.push(req.url ?? '');
      const file = files[req.url ?? ''];
      if (!file) return void res.writeHead(404).end();
      res
        .writeHead(200, { 'content-length': file.body.length, ...(file.etag ? { etag: file.etag } : {}) })
        .end(file.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('names a volume by the URL and what the server says about the file', () => {
    expect(validatorOf(new Headers({ etag: '"k1"', 'content-length': '9' }))).toBe('etag:"k1"');
    expect(validatorOf(new Headers({ 'last-modified': 'Tue, 01 Oct 2024 10:00:00 GMT', 'content-length': '9' }))).toBe(
      'modified:Tue, 01 Oct 2024 10:00:00 GMT;length:9',
    );
    expect(validatorOf(new Headers({ 'content-length': '9' }))).toBe('length:9');
    expect(validatorOf(new Headers())).toBe('');
    const name = installerVolumeName('http://m/vmlinuz', 'etag:"k1"', 'vmlinuz');
    expect(name).toMatch(/^vf-installer-[0-9a-f]{20}-vmlinuz$/);
    expect(installerVolumeName('http://m/vmlinuz', 'etag:"k2"', 'vmlinuz')).not.toBe(name);
    expect(installerVolumeName('http://m/vmlinuz', 'etag:"k1"', 'vmlinuz')).toBe(name);
  });

  it('downloads each file once, puts it on the host under a temporary name, and copies it to its own', async () => {
    const host = fakeHost();
    let ended = 0;
    const media = new InstallMedia({ onJobEnd: () => ended++, tmpDir: tmpdir() });
    const urls = {
      kernelUrl: `${base}/tree/images/pxeboot/vmlinuz`,
      initrdUrl: `${base}/tree/images/pxeboot/initrd.img`,
    };
    const first = await media.ensure(host.hypervisor, 'vf', urls);
    expect(first).toMatchObject({
      state: 'pending',
      message: expect.stringContaining('installer vmlinuz: downloading'),
    });
    let result = first;
    for (let i = 0; i < 200 && result.state !== 'ready'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      result = await media.ensure(host.hypervisor, 'vf', urls);
    }
    const kernel = installerVolumeName(urls.kernelUrl, 'etag:"k1"', 'vmlinuz');
    const initrd = installerVolumeName(urls.initrdUrl, 'etag:"i1"', 'initrd.img');
    expect(result).toEqual({ state: 'ready', kernel: `/pool/${kernel}`, initrd: `/pool/${initrd}` });
    expect(ended).toBe(2);
    expect(host.volumes.get(kernel)?.data).toEqual(files['/tree/images/pxeboot/vmlinuz']!.body);
    expect(host.calls.filter((call) => call.includes(kernel))).toEqual([
      `create ${kernel}.part`,
      `upload ${kernel}.part`,
      `clone ${kernel}.part ${kernel}`,
      `delete ${kernel}.part`,
    ]);
    expect([...host.volumes.keys()].sort()).toEqual([initrd, kernel].sort());

    // Another install from the same URLs: the volumes are there, nothing is downloaded.
    const downloads = served.filter((url) => url.endsWith('vmlinuz')).length;
    const again = new InstallMedia();
    expect(await again.ensure(host.hypervisor, 'vf', urls)).toEqual(result);
    // One GET for the validator (its body not read), no download.
    expect(served.filter((url) => url.endsWith('vmlinuz')).length).toBe(downloads + 1);
  });

  it('says what failed: a missing file, an upload the host refuses, a URL it cannot fetch', async () => {
    const missing = await new InstallMedia().ensure(fakeHost().hypervisor, 'vf', {
      kernelUrl: `${base}/nope/vmlinuz`,
      initrdUrl: `${base}/tree/images/pxeboot/initrd.img`,
    });
    expect(missing).toMatchObject({
      state: 'failed',
      message: expect.stringContaining(`installer vmlinuz ${base}/nope/vmlinuz: HTTP 404`),
    });

    const refusing = fakeHost({ uploadFails: true });
    const media = new InstallMedia({ retryMs: 60_000 });
    const urls = {
      kernelUrl: `${base}/tree/images/pxeboot/vmlinuz`,
      initrdUrl: `${base}/tree/images/pxeboot/initrd.img`,
    };
    let result = await media.ensure(refusing.hypervisor, 'vf', urls);
    for (let i = 0; i < 200 && result.state === 'pending'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      result = await media.ensure(refusing.hypervisor, 'vf', urls);
    }
    expect(result).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('upload to storage pool vf: this host has no streams'),
    });
    expect(refusing.volumes.size).toBe(0); // no half-made volume is left

    const nfs = await new InstallMedia().ensure(fakeHost().hypervisor, 'vf', {
      kernelUrl: 'nfs://10.0.0.1/tree/vmlinuz',
      initrdUrl: 'nfs://10.0.0.1/tree/initrd.img',
    });
    expect(nfs).toMatchObject({
      state: 'failed',
      message: expect.stringContaining(
        `or put the file into storage pool vf on the host as volume ${installerVolumeName('nfs://10.0.0.1/tree/vmlinuz', '', 'vmlinuz')}`,
      ),
    });
  });
});
