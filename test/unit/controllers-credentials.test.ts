// Host credentials at connection time: the files libvirt reads for +ssh and +tls URIs exist
// only while a connection is opened, in a private directory, and the URI names them; URIs that
// would bypass them or turn host-key checking off are refused. Secrets map to credentials by
// the URI's transport, and messages name keys, never values.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { credentialsFromSecret, resolveCredentials } from '../../src/controllers/host-credentials.js';
import {
  CredentialsError,
  credentialedUri,
  prepareOpen,
  transportOf,
} from '../../src/hypervisors/libvirt/credentials.js';
import { HostLink } from '../../src/hypervisors/libvirt/host-link.js';
import type { LibvirtConnection, OpenOptions } from '../../src/hypervisors/libvirt/native/index.js';

const root = mkdtempSync(join(tmpdir(), 'virtfleet-cred-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SSH = {
  ssh: { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n', knownHosts: 'host1 ssh-ed25519 AAAA\n' },
};
const TLS = { tls: { cert: 'CERT', key: 'KEY', ca: 'CA' } };
const mode = (path: string) => statSync(path).mode & 0o777;

describe('prepareOpen', () => {
  it('writes the SSH key and known_hosts to 0600 files in a 0700 directory and names them in the URI', async () => {
    const prepared = await prepareOpen('qemu+ssh://root@host1/system', SSH, { tmpDir: root });
    const dir = prepared.dir!;
    expect(prepared.uri).toBe(`qemu+ssh://root@host1/system?keyfile=${dir}/id&known_hosts=${dir}/known_hosts`);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'id'))).toBe(0o600);
    expect(mode(join(dir, 'known_hosts'))).toBe(0o600);
    expect(readFileSync(join(dir, 'id'), 'utf8')).toBe(SSH.ssh.privateKey);
    await prepared.cleanup();
    expect(existsSync(dir)).toBe(false);
  });

  it('keeps the query the URI had, and writes the three PEM files libvirt expects under pkipath for +tls', async () => {
    const prepared = await prepareOpen('qemu+tls://host1/system?no_tty=1', TLS, { tmpDir: root });
    const dir = prepared.dir!;
    expect(prepared.uri).toBe(`qemu+tls://host1/system?no_tty=1&pkipath=${dir}`);
    for (const file of ['clientcert.pem', 'clientkey.pem', 'cacert.pem']) expect(mode(join(dir, file))).toBe(0o600);
    expect(readFileSync(join(dir, 'cacert.pem'), 'utf8')).toBe('CA');
    await prepared.cleanup();
    expect(existsSync(dir)).toBe(false);
  });

  it('passes username and password to the auth callback and writes nothing for them', async () => {
    const prepared = await prepareOpen('qemu+tcp://host1/system', { username: 'u', password: 'p' }, { tmpDir: root });
    expect(prepared).toMatchObject({ uri: 'qemu+tcp://host1/system', auth: { username: 'u', password: 'p' } });
    expect(prepared.dir).toBeUndefined();
  });

  it('refuses a URI that already names keyfile, known_hosts or pkipath, or turns host-key checking off', async () => {
    await expect(
      prepareOpen('qemu+ssh://root@host1/system?keyfile=/root/.ssh/id', SSH, { tmpDir: root }),
    ).rejects.toThrow(/already sets keyfile/);
    await expect(prepareOpen('qemu+ssh://root@host1/system?known_hosts=/x', SSH, { tmpDir: root })).rejects.toThrow(
      /already sets known_hosts/,
    );
    await expect(prepareOpen('qemu+tls://host1/system?pkipath=/etc/pki', TLS, { tmpDir: root })).rejects.toThrow(
      /already sets pkipath/,
    );
    await expect(prepareOpen('qemu+ssh://root@host1/system?no_verify=1', SSH, { tmpDir: root })).rejects.toThrow(
      /host-key checking must stay on/,
    );
    await expect(prepareOpen('xen+ssh://root@host1?known_hosts_verify=ignore', SSH, { tmpDir: root })).rejects.toThrow(
      /host-key checking must stay on/,
    );
    await expect(prepareOpen('qemu+tls://host1/system', SSH, { tmpDir: root })).rejects.toBeInstanceOf(
      CredentialsError,
    );
    // Nothing is left behind by a refusal.
    expect(readdir(root)).toEqual([]);
  });

  it('tells the transport from the scheme', () => {
    expect(
      ['qemu+ssh://h/system', 'xen+ssh://h', 'qemu+tls://h/system', 'qemu+tcp://h/system', 'test:///default'].map(
        transportOf,
      ),
    ).toEqual(['ssh', 'ssh', 'tls', 'other', 'other']);
    expect(credentialedUri('xen+ssh://root@h', SSH, '/tmp/d')).toBe(
      'xen+ssh://root@h?keyfile=/tmp/d/id&known_hosts=/tmp/d/known_hosts',
    );
  });
});

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('HostLink with file credentials', () => {
  it('has the files while the connection opens and removes them once it is open, or once the open failed', async () => {
    const seen: Array<{ uri: string; files: boolean }> = [];
    let fail = false;
    const connector = async (uri: string, _options: OpenOptions): Promise<LibvirtConnection> => {
      const keyfile = /keyfile=([^&]+)/.exec(uri)![1]!;
      seen.push({ uri, files: existsSync(keyfile) && mode(keyfile) === 0o600 && mode(dirname(keyfile)) === 0o700 });
      if (fail) throw new Error('ssh: connect refused');
      return {
        onDomainEvent: () => () => undefined,
        onClose: () => () => undefined,
        close: async () => undefined,
      } as unknown as LibvirtConnection;
    };
    // No keepalive or reconnects: one open per link, through the connector above.
    const sshLink = () =>
      new HostLink('qemu+ssh://root@host1/system', {
        credentials: () => SSH,
        keepAlive: false,
        reconnect: { initialMs: 60_000, maxMs: 60_000, jitter: 0 },
        connect: connector,
        random: () => 0,
        onListenerError: () => undefined,
      });
    const link = sshLink();
    await link.acquire();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.files).toBe(true);
    const dir = dirname(/keyfile=([^&]+)/.exec(seen[0]!.uri)![1]!);
    expect(existsSync(dir)).toBe(false);
    await link.shutdown();

    fail = true;
    const failing = sshLink();
    await expect(failing.acquire()).rejects.toThrow(/connect refused/);
    expect(seen[1]!.files).toBe(true);
    expect(existsSync(dirname(/keyfile=([^&]+)/.exec(seen[1]!.uri)![1]!))).toBe(false);
    await failing.shutdown();
  });
});

const b64 = (text: string) => Buffer.from(text).toString('base64');
const REF = { name: 'host1-creds', namespace: 'virtfleet-system' };

describe('credentials from a Secret', () => {
  it('takes ssh-privatekey and known_hosts for +ssh, tls.crt, tls.key and ca.crt for +tls, username and password for any', () => {
    const ssh = credentialsFromSecret('qemu+ssh://root@h/system', REF, {
      'ssh-privatekey': b64('KEY'),
      known_hosts: b64('KH'),
    });
    expect(ssh.ok && ssh.credentials.ssh?.privateKey.toString()).toBe('KEY');
    const tls = credentialsFromSecret('qemu+tls://h/system', REF, {
      'tls.crt': b64('C'),
      'tls.key': b64('K'),
      'ca.crt': b64('A'),
      username: b64('u'),
      password: b64('p'),
    });
    expect(tls.ok && [tls.credentials.tls?.ca.toString(), tls.credentials.username, tls.credentials.password]).toEqual([
      'A',
      'u',
      'p',
    ]);
    expect(credentialsFromSecret('test:///h.xml', REF, { username: b64('u'), password: b64('p') })).toEqual({
      ok: true,
      credentials: { username: 'u', password: 'p' },
    });
  });

  it('names the missing keys, never a value', () => {
    const result = credentialsFromSecret('qemu+ssh://root@h/system', REF, { 'ssh-privatekey': b64('TOP-SECRET-KEY') });
    expect(result).toEqual({
      ok: false,
      reason: 'CredentialsInvalid',
      message: expect.stringContaining('Secret virtfleet-system/host1-creds lacks known_hosts'),
    });
    expect(JSON.stringify(result)).not.toContain('TOP-SECRET');
    expect(credentialsFromSecret('qemu+tls://h/system', REF, { 'tls.crt': b64('C') })).toMatchObject({
      ok: false,
      message: expect.stringContaining('lacks tls.key, ca.crt'),
    });
    expect(credentialsFromSecret('qemu+tcp://h/system', REF, {})).toMatchObject({
      ok: false,
      reason: 'CredentialsInvalid',
    });
  });

  it("refuses a Secret outside the controller's namespace without reading it", () => {
    const result = resolveCredentials(
      'qemu+ssh://h/system',
      { name: 'x', namespace: 'default' },
      'virtfleet-system',
      undefined,
    );
    expect(result).toMatchObject({ ok: false, reason: 'CredentialsNamespaceNotAllowed' });
    expect(!result.ok && result.message).toMatch(/must be in the controller's namespace virtfleet-system/);
  });
});
