// `virtfleet api`: an aggregated API server for group subresources.virtfleet.io (VM console and
// VNC, image upload: image-upload.ts). Every request
// but the health probes is authenticated as coming through kube-apiserver's front proxy
// (authentication.ts), then each subresource request is authorized by SubjectAccessReview
// (authorization.ts) before anything about the VM is looked at, so a user without access learns
// nothing, not even whether the VM exists.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { WebSocketServer } from 'ws';
import { LibvirtConnectionPool } from '../hypervisors/libvirt/connection-pool.js';
import type { Logger } from '../observability/logging.js';
import { Cache } from '../runtime/cache.js';
import { KubeClient } from '../runtime/kube-client.js';
import { authenticate, RequestHeaderSource, type RequestHeaderConfig, type UserInfo } from './authentication.js';
import { Authorizer, verbOf } from './authorization.js';
import { ConsoleBridge, DEFAULT_BUFFERS, type ConsoleBuffers } from './console.js';
import { discoveryDocuments, type SubresourceInfo } from './discovery.js';
import { internalError, refuseUpgrade, sendJson, sendStatus, StatusError } from './responses.js';
import { queryFlag, subresourceRoute, type SubresourceRoute } from './routes.js';
import { CLOSE, SessionRegistry, type SessionLimits } from './sessions.js';
import { VmLocator } from './vm-location.js';
import { VncBridge } from './vnc.js';
import { ImageUploads } from './image-upload.js';

export interface ApiServerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  host: string;
  port: number;
  /** PEM files of the serving certificate and key. */
  tlsCertFile: string;
  tlsKeyFile: string;
  /** The namespace of host credential Secrets (the controller's). */
  credentialsNamespace: string;
  limits: SessionLimits;
  buffers?: ConsoleBuffers;
  /** Image uploads: the largest taken and where they are staged. */
  uploads: { maxBytes: number; stagingDir?: string };
}

export const SUBRESOURCES: SubresourceInfo[] = [
  {
    name: 'console',
    description:
      "connect to the VM's serial console: a WebSocket carrying the console's bytes both ways (query force=true takes it over from another session)",
  },
  {
    name: 'vnc',
    description:
      "connect to the VM's VNC server (spec.graphics): a WebSocket carrying RFB both ways, for any VNC viewer through `virtfleet vm vnc`",
  },
  {
    name: 'upload',
    resource: 'virtualmachineimages',
    description:
      "upload the image's content (spec.source.upload): POST the file's bytes with its Content-Length (query sha256=HEX to have them checked); 202 once they are whole and an image, then status.upload tells how the hosts get them (`virtfleet image upload`)",
  },
];

export class ApiServer {
  private readonly server: Server;
  private readonly cache: Cache;
  private readonly stopCache = new AbortController();
  private readonly headers: RequestHeaderSource;
  private readonly authorizer: Authorizer;
  private readonly locator: VmLocator;
  private readonly pool = new LibvirtConnectionPool();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 10, perMessageDeflate: false });
  readonly sessions: SessionRegistry;
  private readonly consoles: ConsoleBridge;
  private readonly vncs: VncBridge;
  private readonly uploads: ImageUploads;
  private readonly documents = discoveryDocuments(SUBRESOURCES);
  private caching: Promise<void> | undefined;

  constructor(private readonly options: ApiServerOptions) {
    const client = new KubeClient(options.kubeConfig, 'virtfleet-api');
    this.cache = new Cache(client, options.logger);
    const serving = () => ({
      cert: readFileSync(options.tlsCertFile),
      key: readFileSync(options.tlsKeyFile),
    });
    // Client certificates are asked for but checked per request (authenticate()): probes come without one.
    this.server = createServer({ ...serving(), requestCert: true, rejectUnauthorized: false });
    this.headers = new RequestHeaderSource(this.cache, options.logger, (config: RequestHeaderConfig) =>
      this.server.setSecureContext({ ...serving(), ca: config.ca }),
    );
    this.authorizer = new Authorizer(client);
    this.locator = new VmLocator(client, options.credentialsNamespace);
    this.sessions = new SessionRegistry(options.limits);
    this.consoles = new ConsoleBridge(
      this.pool,
      this.sessions,
      this.wss,
      options.logger,
      options.buffers ?? DEFAULT_BUFFERS,
    );
    this.vncs = new VncBridge(client, this.sessions, this.wss, options.logger, options.buffers ?? DEFAULT_BUFFERS);
    this.uploads = new ImageUploads(client, options.logger, {
      ...options.uploads,
      credentialsNamespace: options.credentialsNamespace,
    });
    this.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      this.handleRequest(request, response).catch((error: unknown) => {
        if (!response.headersSent) sendStatus(response, internalError(error));
        else response.destroy();
      });
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(request, socket, head).catch((error: unknown) => {
        const status = internalError(error);
        if (status.code >= 500) options.logger.warn({ err: status.message, url: request.url }, 'upgrade refused');
        refuseUpgrade(socket, status);
      });
    });
    this.server.on('tlsClientError', (error) => options.logger.debug({ err: error.message }, 'TLS handshake failed'));
  }

  /** Starts watching the authentication ConfigMap and listening; resolves with the port. */
  async start(): Promise<number> {
    this.caching = this.cache.run(this.stopCache.signal);
    await this.cache.waitForSync();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.options.logger.info({ host: this.options.host, port }, 'virtfleet api serving');
    return port;
  }

  async stop(): Promise<void> {
    this.sessions.endAll(CLOSE.shutdown, 'virtfleet api is shutting down; connect again');
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.wss.close();
    await this.uploads.stop();
    this.stopCache.abort();
    await this.caching;
    await this.pool.closeAll();
  }

  private user(request: IncomingMessage): UserInfo {
    return authenticate(request, this.headers.current);
  }

  private async handleRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://localhost');
    if (url.pathname === '/healthz' || url.pathname === '/livez') return sendText(response, 200, 'ok');
    if (url.pathname === '/readyz') {
      const problem = this.headers.notReady;
      return sendText(response, problem ? 503 : 200, problem ?? 'ok');
    }
    try {
      const user = this.user(request);
      const document = this.documents.get(url.pathname);
      if (document !== undefined) {
        if (request.method !== 'GET')
          throw new StatusError(405, 'MethodNotAllowed', `${request.method} is not served on ${url.pathname}`);
        return sendJson(response, 200, document);
      }
      const route = subresourceRoute(url.pathname);
      if (!route) throw notFound(url.pathname);
      await this.authorize(request, user, route);
      if (route.resource === 'virtualmachineimages')
        return await this.uploads.handle(request, response, route.namespace, route.name, user.name);
      throw new StatusError(
        400,
        'BadRequest',
        `${route.subresource} is a WebSocket: connect with an Upgrade request (virtfleet vm ${route.subresource} ${route.name})`,
      );
    } catch (error) {
      sendStatus(response, internalError(error));
    }
  }

  private async handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://localhost');
    const user = this.user(request);
    const route = subresourceRoute(url.pathname);
    if (!route) throw notFound(url.pathname);
    await this.authorize(request, user, route);
    if (route.resource !== 'virtualmachines')
      throw new StatusError(400, 'BadRequest', `${route.resource}/${route.subresource} is not a WebSocket`);
    if (route.subresource === 'vnc')
      return this.vncs.open(request, socket, head, user.name, route.namespace, route.name);
    const location = await this.locator.locate(route.namespace, route.name);
    await this.consoles.open(request, socket, head, user.name, location, queryFlag(url, 'force'));
  }

  private async authorize(request: IncomingMessage, user: UserInfo, route: SubresourceRoute): Promise<void> {
    if (
      !SUBRESOURCES.some(
        (sub) => sub.name === route.subresource && (sub.resource ?? 'virtualmachines') === route.resource,
      )
    )
      throw notFound(`${route.resource}/${route.subresource}`);
    await this.authorizer.authorize(user, {
      namespace: route.namespace,
      name: route.name,
      resource: route.resource,
      subresource: route.subresource,
      verb: verbOf(request.method),
    });
  }
}

function notFound(what: string): StatusError {
  return new StatusError(404, 'NotFound', `the server could not find the requested resource (${what})`);
}

function sendText(response: ServerResponse, code: number, text: string): void {
  response.writeHead(code, { 'content-type': 'text/plain' });
  response.end(text);
}
