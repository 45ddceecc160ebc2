// Host credentials at connection time. libvirt reads key and certificate material from files
// named in the URI, so for the moment a connection is opened they are written to 0600 files in
// a private 0700 temp directory, and removed as soon as the open has finished (either way):
//
//   qemu+ssh, xen+ssh  ssh private key, known_hosts   → ?keyfile=DIR/id&known_hosts=DIR/known_hosts
//   (+libssh, +libssh2) (host-key checking stays on: no_verify and known_hosts_verify are refused)
//                      NOTE: libvirt documents known_hosts for its libssh/libssh2 transports; the
//                      plain +ssh transport (the ssh binary) may ignore it and check against the
//                      controller user's own known_hosts instead (still checked, never skipped).
//   qemu+tls           client cert, key, CA            → ?pkipath=DIR (clientcert.pem, clientkey.pem, cacert.pem)
//   any                username, password              → the binding's auth callback (SASL, test driver)
//
// A URI that already names keyfile, known_hosts or pkipath is refused: the files would not be
// the Secret's. Nothing here logs, and no error message carries a secret value.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostCredentials } from '../hypervisor.js';

// The credential types are the Hypervisor contract's: the hosts layer passes them on without
// knowing libvirt.
export type { HostCredentials, SshCredentials, TlsCredentials } from '../hypervisor.js';

export type Transport = 'ssh' | 'tls' | 'other';

/** The URI's transport: the part after '+' of the scheme (qemu+ssh → ssh). */
export function transportOf(uri: string): Transport {
  const scheme = /^([a-z0-9+.-]+):/i.exec(uri)?.[1]?.toLowerCase() ?? '';
  const transport = scheme.split('+')[1];
  // libssh and libssh2 are libvirt's in-process SSH transports: same key material.
  return transport === 'ssh' || transport === 'libssh' || transport === 'libssh2'
    ? 'ssh'
    : transport === 'tls'
      ? 'tls'
      : 'other';
}

/** Credentials that cannot be used with a URI (the message names keys and parameters, never values). */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

/** URI parameters that name credential files: only this module sets them. */
const FILE_PARAMS = ['keyfile', 'known_hosts', 'pkipath'];

export interface PreparedOpen {
  /** The URI to open: the configured one, plus the file parameters. */
  uri: string;
  auth?: { username?: string; password?: string };
  /** The private directory, while it exists (tests look at it). */
  dir?: string;
  /** Removes the files; call once the open has finished. Never throws. */
  cleanup(): Promise<void>;
}

function queryParams(uri: string): Map<string, string> {
  const query = uri.split('?')[1] ?? '';
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    if (!part) continue;
    const [name = '', value = ''] = part.split('=');
    params.set(decodeURIComponent(name).toLowerCase(), decodeURIComponent(value));
  }
  return params;
}

/** Checks `uri` against `credentials` and builds the URI that names the files; writes nothing. */
export function credentialedUri(uri: string, credentials: HostCredentials, dir: string): string {
  const transport = transportOf(uri);
  if (uri.includes('#')) throw new CredentialsError(`the URI ${uri} has a fragment; remove it`);
  const params = queryParams(uri);
  const fileParams = FILE_PARAMS.filter((name) => params.has(name));
  const wantsFiles = credentials.ssh !== undefined || credentials.tls !== undefined;
  if (wantsFiles && fileParams.length > 0) {
    throw new CredentialsError(
      `the URI already sets ${fileParams.join(', ')}; remove it: the controller writes these files from the credentials Secret`,
    );
  }
  if (credentials.ssh && transport !== 'ssh')
    throw new CredentialsError(`an SSH key was given, but ${uri} is not an +ssh URI`);
  if (credentials.tls && transport !== 'tls')
    throw new CredentialsError(`TLS certificates were given, but ${uri} is not a +tls URI`);
  if (!/^[A-Za-z0-9._/-]+$/.test(dir))
    throw new CredentialsError(`the temp directory ${JSON.stringify(dir)} cannot go into a libvirt URI`);
  const added: string[] = [];
  if (credentials.ssh) {
    const noVerify = params.get('no_verify');
    if (noVerify !== undefined && noVerify !== '0')
      throw new CredentialsError('the URI sets no_verify: host-key checking must stay on; remove it');
    const verify = params.get('known_hosts_verify');
    if (verify !== undefined && verify !== 'normal')
      throw new CredentialsError('the URI sets known_hosts_verify: host-key checking must stay on; remove it');
    added.push(`keyfile=${join(dir, 'id')}`, `known_hosts=${join(dir, 'known_hosts')}`);
  }
  if (credentials.tls) added.push(`pkipath=${dir}`);
  if (added.length === 0) return uri;
  return `${uri}${uri.includes('?') ? (uri.endsWith('?') || uri.endsWith('&') ? '' : '&') : '?'}${added.join('&')}`;
}

/**
 * Gets a connection to `uri` ready to open with `credentials`: files written, URI built. Call
 * cleanup() once the open has finished, whether it succeeded or not.
 */
export async function prepareOpen(
  uri: string,
  credentials: HostCredentials | undefined,
  options: { tmpDir?: string } = {},
): Promise<PreparedOpen> {
  const auth =
    credentials && (credentials.username !== undefined || credentials.password !== undefined)
      ? {
          ...(credentials.username !== undefined ? { username: credentials.username } : {}),
          ...(credentials.password !== undefined ? { password: credentials.password } : {}),
        }
      : undefined;
  const base = auth ? { auth } : {};
  if (!credentials || (!credentials.ssh && !credentials.tls)) {
    if (credentials) credentialedUri(uri, credentials, '/'); // the same checks
    return { uri, ...base, cleanup: async () => undefined };
  }
  // mkdtemp makes the directory with mode 0700; the chmod holds against any umask.
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'virtfleet-cred-'));
  const cleanup = () => rm(dir, { recursive: true, force: true }).catch(() => undefined);
  try {
    await chmod(dir, 0o700);
    const target = credentialedUri(uri, credentials, dir);
    const write = async (name: string, data: string | Buffer) => {
      const path = join(dir, name);
      await writeFile(path, data, { mode: 0o600, flag: 'wx' });
      await chmod(path, 0o600);
    };
    if (credentials.ssh) {
      await write('id', credentials.ssh.privateKey);
      await write('known_hosts', credentials.ssh.knownHosts);
    }
    if (credentials.tls) {
      await write('clientcert.pem', credentials.tls.cert);
      await write('clientkey.pem', credentials.tls.key);
      await write('cacert.pem', credentials.tls.ca);
    }
    return { uri: target, ...base, dir, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
