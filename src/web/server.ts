// The web console's server, run by `virtfleet api --web-port`: its own HTTPS port with the API
// server's serving certificate. It logs people in with a bearer token (TokenReview), keeps the
// token server-side behind an HttpOnly session cookie, relays watches to the page as SSE and
// makes the few writes the pages offer, every one of them as the person (their token), so RBAC
// decides. Writes need the session's CSRF token in a header and a same-origin Origin.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logging.js';
import { KubeClient, namespaceProblem, objectNameProblem } from '../runtime/kube-client.js';
import {
  clearedSessionCookie,
  CSRF_HEADER,
  readJson,
  sendError,
  sendJson,
  sessionCookie,
  sessionIdOf,
  WebError,
} from './http.js';
import { kubeError, reviewToken, UserKube, WATCHABLE } from './kube.js';
import { csrfMatches, WebSessions, type SessionTimes, type WebSession } from './sessions.js';
import { defaultAppDir, StaticApp } from './static.js';
import { relayWatch } from './watch-relay.js';
import { kickstartOf } from './kickstart.js';
import { ConsoleProxy } from './console-proxy.js';
import { createVm } from './create-vm.js';
import { applyVmYaml, checkName, deleteVm, setMaintenance, vmAction, vmYaml } from './writes.js';

export interface WebServerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  host: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  sessionTimes?: SessionTimes;
  appDir?: string;
}

const ACCESS_VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);

export class WebServer {
  private readonly server: Server;
  private readonly kube: UserKube;
  private readonly own: KubeClient;
  private readonly app: StaticApp;
  readonly sessions: WebSessions;
  /** Open SSE streams per session, ended at logout. */
  private readonly streams = new Map<string, Set<AbortController>>();
  private readonly stopping = new AbortController();
  private readonly consoles: ConsoleProxy;

  constructor(private readonly options: WebServerOptions) {
    this.app = new StaticApp(options.appDir ?? defaultAppDir());
    this.kube = new UserKube(options.kubeConfig);
    this.own = new KubeClient(options.kubeConfig, 'virtfleet-web');
    this.sessions = new WebSessions(options.sessionTimes);
    this.server = createServer({ cert: readFileSync(options.tlsCertFile), key: readFileSync(options.tlsKeyFile) });
    this.consoles = new ConsoleProxy(this.kube, this.sessions, options.logger);
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.consoles.upgrade(request, socket, head),
    );
    this.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      this.handle(request, response).catch((error: unknown) => {
        const web =
          error instanceof WebError
            ? error
            : new WebError(502, `the Kubernetes API could not be asked: ${String(error)}`);
        if (web.code >= 500) options.logger.warn({ err: String(error), url: request.url }, 'web request failed');
        if (!response.headersSent) sendError(response, web);
        else response.destroy();
      });
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.options.logger.info({ host: this.options.host, port }, 'virtfleet web console serving');
    return port;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.consoles.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.kube.close();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://localhost');
    const path = url.pathname;
    if (!path.startsWith('/api/')) {
      if (request.method !== 'GET' && request.method !== 'HEAD') throw new WebError(405, `${request.method} ${path}`);
      return this.app.serve(path, response);
    }
    if (path === '/api/login' && request.method === 'POST') return this.login(request, response);
    const session = this.sessions.get(sessionIdOf(request));
    if (!session) throw new WebError(401, 'not logged in, or the session expired: log in again');
    if (request.method !== 'GET') this.checkWrite(request, session);
    if (path === '/api/session' && request.method === 'GET')
      return sendJson(response, 200, this.describe(session), { 'set-cookie': this.cookie(session) });
    if (path === '/api/logout' && request.method === 'POST') return this.logout(session, response);
    if (path === '/api/access' && request.method === 'GET') return this.access(session, url, response);
    const watch = /^\/api\/watch\/([a-z]+)$/.exec(path);
    if (watch && request.method === 'GET') return this.watch(session, watch[1]!, url, request, response);
    if (await this.object(session, path, request, response)) return;
    throw new WebError(404, `no such console endpoint: ${request.method} ${path}`);
  }

  private cookie(session: WebSession): string {
    return sessionCookie(session.id, this.sessions.cookieSeconds(session));
  }

  private describe(session: WebSession) {
    return {
      user: session.user,
      csrfToken: session.csrf,
      expiresAt: new Date(session.createdAt + this.sessions.times.maxMs).toISOString(),
      idleMinutes: Math.round(this.sessions.times.idleMs / 60_000),
    };
  }

  /** Writes come from our own page: the CSRF header of the session, and no other site's Origin. */
  private checkWrite(request: IncomingMessage, session: WebSession): void {
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `https://${request.headers.host ?? ''}`)
      throw new WebError(403, `a request from ${origin} is not accepted: open the console itself`);
    if (!csrfMatches(session, request.headers[CSRF_HEADER]))
      throw new WebError(403, `missing or wrong ${CSRF_HEADER} header: reload the page`);
  }

  private async login(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `https://${request.headers.host ?? ''}`)
      throw new WebError(403, `a login from ${origin} is not accepted: open the console itself`);
    const body = await readJson(request);
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (!token || token.length > 16 << 10 || /[\s\u0000-\u001f]/.test(token))
      throw new WebError(400, 'token: paste a bearer token (a ServiceAccount token or an OIDC ID token)');
    const user = await reviewToken(this.own, token);
    this.sessions.end(sessionIdOf(request));
    const session = this.sessions.create(token, user);
    this.options.logger.info({ user: user.name }, 'web console login');
    sendJson(response, 200, this.describe(session), { 'set-cookie': this.cookie(session) });
  }

  private logout(session: WebSession, response: ServerResponse): void {
    this.sessions.end(session.id);
    for (const stream of this.streams.get(session.id) ?? []) stream.abort();
    this.streams.delete(session.id);
    this.consoles.endSession(session.id);
    this.options.logger.info({ user: session.user.name }, 'web console logout');
    sendJson(response, 200, { loggedOut: true }, { 'set-cookie': clearedSessionCookie() });
  }

  /** May the person do `verb` on `resource` (in `namespace`)? A SelfSubjectAccessReview as them. */
  private async access(session: WebSession, url: URL, response: ServerResponse): Promise<void> {
    const verb = url.searchParams.get('verb') ?? '';
    const resource = url.searchParams.get('resource') ?? '';
    const namespace = url.searchParams.get('namespace') || undefined;
    // The serial console and VNC are the access issue's subresources, in their own API group (docs/access.md).
    const stream = /^virtualmachines\/(console|vnc)$/.exec(resource);
    const type = stream
      ? { group: 'subresources.virtfleet.io', plural: 'virtualmachines', subresource: stream[1]! }
      : WATCHABLE[resource];
    if (!ACCESS_VERBS.has(verb) || !type) throw new WebError(400, 'verb or resource: not one the console asks about');
    if (namespace !== undefined) checkName('namespace', namespace, namespaceProblem);
    const subresource = 'subresource' in type ? type.subresource : undefined;
    const answer = await this.kube.call(
      session.token,
      'POST',
      '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { verb, group: type.group, resource: type.plural, subresource, namespace } },
        },
      },
    );
    if (answer.status !== 201 && answer.status !== 200)
      throw kubeError(answer, { verb: 'create', resource: 'selfsubjectaccessreviews', namespace: '' });
    const allowed = (answer.body as { status?: { allowed?: boolean } }).status?.allowed === true;
    sendJson(response, 200, { allowed });
  }

  private async watch(
    session: WebSession,
    resource: string,
    url: URL,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const type = WATCHABLE[resource];
    if (!type) throw new WebError(404, `${resource}: the console watches ${Object.keys(WATCHABLE).join(', ')}`);
    const namespace = (type.namespaced && url.searchParams.get('namespace')) || undefined;
    if (namespace !== undefined) checkName('namespace', namespace, namespaceProblem);
    const name = url.searchParams.get('name') || undefined;
    if (name !== undefined) checkName('name', name, objectNameProblem);
    const fieldSelector = name
      ? resource === 'events'
        ? `involvedObject.name=${name}`
        : `metadata.name=${name}`
      : undefined;
    const ended = new AbortController();
    const set = this.streams.get(session.id) ?? new Set();
    this.streams.set(session.id, set.add(ended));
    const stopped = () => ended.abort();
    this.stopping.signal.addEventListener('abort', stopped);
    try {
      await relayWatch({
        kube: this.kube,
        token: () => this.sessions.peek(session.id)?.token,
        scope: { type, resource, namespace, fieldSelector },
        request,
        response,
        logger: this.options.logger,
        signal: ended.signal,
      });
    } finally {
      set.delete(ended);
      if (set.size === 0 && this.streams.get(session.id) === set) this.streams.delete(session.id);
      this.stopping.signal.removeEventListener('abort', stopped);
    }
  }

  /** The VM, install profile and host routes: each a write or read as the person (src/web/writes.ts). */
  private async object(
    session: WebSession,
    path: string,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<boolean> {
    const token = session.token;
    const collection = /^\/api\/namespaces\/([^/]+)\/virtualmachines$/.exec(path);
    if (collection && request.method === 'POST') {
      const namespace = decodeURIComponent(collection[1]!);
      checkName('namespace', namespace, namespaceProblem);
      const answer = await createVm(this.kube, token, namespace, await readJson(request));
      if (answer.created) this.options.logger.info({ user: session.user.name, namespace }, 'web console create');
      sendJson(response, 200, answer);
      return true;
    }
    const vm = /^\/api\/namespaces\/([^/]+)\/virtualmachines\/([^/]+)(?:\/(action|yaml))?$/.exec(path);
    if (vm) {
      const target = { namespace: decodeURIComponent(vm[1]!), name: decodeURIComponent(vm[2]!) };
      checkName('namespace', target.namespace, namespaceProblem);
      checkName('name', target.name, objectNameProblem);
      const what = `${request.method} ${vm[3] ?? 'vm'}`;
      let answer: unknown;
      if (what === 'POST action') answer = await vmAction(this.kube, token, target, await readJson(request));
      else if (what === 'DELETE vm') answer = await deleteVm(this.kube, token, target);
      else if (what === 'GET yaml') answer = await vmYaml(this.kube, token, target);
      else if (what === 'POST yaml') answer = await applyVmYaml(this.kube, token, target, await readJson(request));
      else return false;
      if (request.method !== 'GET')
        this.options.logger.info({ user: session.user.name, ...target, what }, 'web console write');
      sendJson(response, 200, answer);
      return true;
    }
    const profile = /^\/api\/namespaces\/([^/]+)\/installprofiles\/([^/]+)\/kickstart$/.exec(path);
    if (profile && request.method === 'GET') {
      const target = { namespace: decodeURIComponent(profile[1]!), name: decodeURIComponent(profile[2]!) };
      checkName('namespace', target.namespace, namespaceProblem);
      checkName('name', target.name, objectNameProblem);
      sendJson(response, 200, await kickstartOf(this.kube, token, target));
      return true;
    }
    const host = /^\/api\/hostpools\/([^/]+)\/hosts\/([^/]+)\/maintenance$/.exec(path);
    if (host && request.method === 'POST') {
      const target = { pool: decodeURIComponent(host[1]!), host: decodeURIComponent(host[2]!) };
      checkName('pool', target.pool, objectNameProblem);
      checkName('host', target.host, namespaceProblem);
      const answer = await setMaintenance(this.kube, token, target, await readJson(request));
      this.options.logger.info({ user: session.user.name, ...answer }, 'web console maintenance');
      sendJson(response, 200, answer);
      return true;
    }
    return false;
  }
}
