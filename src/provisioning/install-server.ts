// The controller's install endpoint: serves each installing VM its own Kickstart file at
//
//   GET <url base>/ks/<vm uid>/<token>
//
// where the token is 32 random bytes (base64url, 43 characters) issued when the VM's install
// starts and revoked when it ends (installed, timed out, failed, VM deleted). Anything else —
// an unknown UID, a wrong token, a revoked one, another path, a query string, any method but
// GET — is a 404 with the same body, so the answer tells nothing about which part was wrong.
//
// Tokens are kept in memory only as their sha256, next to the VM's UID; a presented token is
// hashed and compared with crypto.timingSafeEqual (same length always, so no early exit and no
// length leak). The plaintext exists in the reconcile that issued it and in the one place the
// installer reads it: the kernel command line of the VM's domain on its host (inst.ks=…). A
// controller that restarts during an install reads it back from there (install.ts), so an
// install survives a controller restart without the token ever being stored in the cluster.
//
// The server renders nothing itself: `kickstart(uid, client)` (the controller's) checks the VM
// and renders its profile at serve time, and records the fetch as an Event. Bodies are never
// logged; request logs carry the path with the token cut off.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logging.js';
import { closeServer, parseAddress } from '../runtime/http-endpoints.js';

/** Random bytes in a token. */
export const TOKEN_BYTES = 32;
/** base64url of 32 bytes, without padding. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const UID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What replaces the token wherever a URL is shown (conditions, logs). */
export const TOKEN_ELLIPSIS = '…';

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export function isToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether `presented` is the token whose sha256 is `expected`; constant time in the token. */
export function tokenMatches(expected: Buffer, presented: string): boolean {
  // Both sides are 32-byte digests whatever was presented: timingSafeEqual never sees lengths differ.
  return timingSafeEqual(expected, tokenHash(presented));
}

/** The path of a VM's Kickstart. */
export function kickstartPath(uid: string, token: string): string {
  return `/ks/${uid}/${token}`;
}

/** `/ks/<uid>/<token>` → its parts; undefined for any other path (query strings are not accepted). */
export function parseKickstartPath(path: string): { uid: string; token: string } | undefined {
  const match = /^\/ks\/([^/]+)\/([^/]+)$/.exec(path);
  if (!match) return undefined;
  const [, uid = '', token = ''] = match;
  return UID_PATTERN.test(uid) && isToken(token) ? { uid, token } : undefined;
}

/** `url` with the token of a Kickstart path replaced by '…', for conditions and logs. */
export function redactKickstartUrl(url: string): string {
  return url.replace(/(\/ks\/[^/\s]+\/)[^/\s?]+/g, `$1${TOKEN_ELLIPSIS}`);
}

/** A URL base guests can use: http(s)://host:port, no trailing slash, no query or fragment. */
const URL_BASE = /^https?:\/\/[A-Za-z0-9[\]._:%-]+(\/[A-Za-z0-9._~/%-]*)?$/;

/**
 * The URL base of the endpoint: `urlBase` when given (behind NAT, a Service, a load balancer),
 * else the scheme and the bound address. An address that binds every interface says nothing
 * about which one guests reach, so it needs `urlBase`.
 */
export function installUrlBase(options: { address: string; urlBase?: string; tls: boolean }, port?: number): string {
  if (options.urlBase !== undefined) {
    const base = options.urlBase.replace(/\/+$/, '');
    if (!URL_BASE.test(base)) {
      throw new Error(
        `--install-url-base: ${JSON.stringify(options.urlBase)} is not an http:// or https:// URL of safe characters (e.g. http://10.0.0.2:8082)`,
      );
    }
    return base;
  }
  const { host, port: configured } = parseAddress(options.address);
  if (host === '0.0.0.0' || host === '::') {
    throw new Error(
      `--install-address ${options.address} listens on every address, which does not say which one guests reach: ` +
        'give --install-url-base (e.g. http://10.0.0.2:8082), or listen on one address',
    );
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  return `${options.tls ? 'https' : 'http'}://${shown}:${port ?? configured}`;
}

export type KickstartAnswer =
  | { status: 'ok'; text: string }
  /** The VM is installing but its file cannot be rendered now (the controller recorded why). */
  | { status: 'unavailable' }
  /** No such VM, or it is not installing (any more). */
  | { status: 'gone' };

/** Renders the VM's file (and records the fetch); `client` is the peer address, for the Event. */
export type KickstartSource = (uid: string, client: string) => Promise<KickstartAnswer>;

export interface InstallServerOptions {
  /** HOST:PORT to listen on; port 0 picks a free one (tests). */
  address: string;
  /** The URL base guests use, when it differs from the address (NAT, a Service). */
  urlBase?: string;
  /** Serve HTTPS with this certificate chain and key (PEM files, read at start). */
  tls?: { certFile: string; keyFile: string };
  logger: Logger;
}

type ServerState =
  | { kind: 'starting' }
  | { kind: 'listening'; urlBase: string }
  | { kind: 'failed'; message: string }
  | { kind: 'stopped' };

const NOT_FOUND = 'not found\n';

export class InstallServer {
  readonly name = 'install-server';
  /** By VM UID: the sha256 of its token. */
  private readonly tokens = new Map<string, Buffer>();
  private state: ServerState = { kind: 'starting' };
  private source: KickstartSource | undefined;
  private readonly listeners = new Set<() => void>();
  /** Compared against for unknown UIDs, so that those cost what a wrong token costs. */
  private readonly decoy = tokenHash(newToken());

  constructor(private readonly options: InstallServerOptions) {
    // Refuse a configuration guests could not use before anything runs (port 0 is filled in later).
    installUrlBase({
      address: options.address,
      tls: options.tls !== undefined,
      ...(options.urlBase !== undefined ? { urlBase: options.urlBase } : {}),
    });
  }

  /** Who renders the files; set once by the controller wiring. */
  serveFrom(source: KickstartSource): void {
    this.source = source;
  }

  /** A new token for the VM (any earlier one is revoked); the plaintext is returned once. */
  issue(uid: string): string {
    const token = newToken();
    this.tokens.set(uid, tokenHash(token));
    return token;
  }

  /** Takes a token found on the host (after a restart) as the VM's; false when it is no token. */
  adopt(uid: string, token: string): boolean {
    if (!isToken(token)) return false;
    this.tokens.set(uid, tokenHash(token));
    return true;
  }

  revoke(uid: string): void {
    this.tokens.delete(uid);
  }

  holds(uid: string): boolean {
    return this.tokens.has(uid);
  }

  /** Whether a request for `uid` with `token` would be answered (the token check alone). */
  accepts(uid: string, token: string): boolean {
    const expected = this.tokens.get(uid);
    const match = tokenMatches(expected ?? this.decoy, token);
    return expected !== undefined && match;
  }

  /** Listening (with the URL base guests use), failed (why), or not yet. */
  status(): ServerState {
    return this.state;
  }

  /** The URL the VM's installer fetches; only while listening. */
  urlFor(uid: string, token: string): string {
    if (this.state.kind !== 'listening') throw new Error('the install endpoint is not listening');
    return `${this.state.urlBase}${kickstartPath(uid, token)}`;
  }

  /** Called once when the server listens or fails to (the VMs that wait for it are looked at again). */
  onStateChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listens until `signal` aborts (a Manager runnable: on the leader only). */
  async run(signal: AbortSignal): Promise<void> {
    const { logger } = this.options;
    let server: Server;
    try {
      server = await this.listen();
    } catch (error) {
      this.setState({ kind: 'failed', message: (error as Error).message });
      logger.error({ err: error, address: this.options.address }, 'install endpoint cannot listen');
      throw error;
    }
    const port = (server.address() as AddressInfo).port;
    const urlBase = installUrlBase(
      {
        address: this.options.address,
        tls: this.options.tls !== undefined,
        ...(this.options.urlBase !== undefined ? { urlBase: this.options.urlBase } : {}),
      },
      port,
    );
    this.setState({ kind: 'listening', urlBase });
    logger.info(
      { address: this.options.address, port, urlBase, tls: this.options.tls !== undefined },
      'install endpoint listening',
    );
    try {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      this.setState({ kind: 'stopped' });
      server.closeAllConnections();
      await closeServer(server);
    }
  }

  private setState(state: ServerState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  private async listen(): Promise<Server> {
    const { host, port } = parseAddress(this.options.address);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const tls = this.options.tls;
    const server = tls
      ? createHttpsServer({ cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, handler)
      : createHttpServer(handler);
    // Installers fetch a few KiB once; nothing here needs a slow client held for long.
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = req.socket.remoteAddress ?? 'unknown';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const shown = redactKickstartUrl(path);
    const answer = (status: number, body: string, contentType = 'text/plain; charset=utf-8') => {
      res.writeHead(status, {
        'content-type': contentType,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
      });
      res.end(body);
      this.options.logger[status === 200 ? 'info' : 'debug'](
        { client, method: req.method, path: shown, status },
        'install endpoint request',
      );
    };
    try {
      const parsed = parseKickstartPath(path);
      if (
        req.method !== 'GET' ||
        !parsed ||
        (req.url ?? '').includes('?') ||
        !this.accepts(parsed.uid, parsed.token) ||
        !this.source
      ) {
        answer(404, NOT_FOUND);
        return;
      }
      const result = await this.source(parsed.uid, client);
      // Revoked while rendering (the install ended): the answer is the same as for any other 404.
      if (result.status === 'gone' || !this.accepts(parsed.uid, parsed.token)) answer(404, NOT_FOUND);
      else if (result.status === 'unavailable') answer(503, 'unavailable\n');
      else answer(200, result.text);
    } catch (error) {
      this.options.logger.warn({ err: error, client, path: shown }, 'install endpoint request failed');
      if (!res.headersSent) answer(500, 'error\n');
    }
  }
}
