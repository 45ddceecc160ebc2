// The kube-apiserver as the person logged in: every request carries their own bearer token, so
// RBAC decides what the console may do exactly as it decides for `kubectl --token`. Only
// TokenReview (is this token anyone?) is asked with the server's own identity.
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, request, type Dispatcher } from 'undici';
import type { KubeClient, ResourceType } from '../runtime/kube-client.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../controllers/resources.js';
import { INSTALL_PROFILE } from '../controllers/installprofile.js';
import { WebError } from './http.js';
import type { WebUser } from './sessions.js';

const EVENT: ResourceType = { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true };

/** What the pages may list and watch, by the name in /api/watch/<name>. */
export const WATCHABLE: Record<string, ResourceType> = {
  virtualmachines: VIRTUAL_MACHINE,
  hostpools: HOST_POOL,
  events: EVENT,
  installprofiles: INSTALL_PROFILE,
};

export interface KubeAnswer {
  status: number;
  body: unknown;
}

export class UserKube {
  readonly server: string;
  /** How to trust the kube-apiserver, for the console's WebSocket (src/web/console-proxy.ts). */
  readonly tls: { ca?: Buffer; rejectUnauthorized: boolean };
  private readonly agent: Agent;

  constructor(config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
    const ca = cluster.caData
      ? Buffer.from(cluster.caData, 'base64')
      : cluster.caFile
        ? readFileSync(cluster.caFile)
        : undefined;
    this.tls = { ...(ca ? { ca } : {}), rejectUnauthorized: !cluster.skipTLSVerify };
    this.agent = new Agent({
      connect: this.tls,
      keepAliveTimeout: 30_000,
    });
  }

  /** One request as the token's owner; any status comes back (the caller turns errors into words). */
  async call(
    token: string,
    method: Dispatcher.HttpMethod,
    path: string,
    options: { query?: Record<string, string | undefined>; body?: unknown; contentType?: string } = {},
  ): Promise<KubeAnswer> {
    const response = await request(this.url(path, options.query), {
      method,
      dispatcher: this.agent,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(options.body !== undefined ? { 'content-type': options.contentType ?? 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.body.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = { message: text.slice(0, 500) };
    }
    return { status: response.statusCode, body };
  }

  /** A streaming GET (a watch) as the token's owner; the caller reads and closes the body. */
  stream(token: string, path: string, query: Record<string, string | undefined>, signal: AbortSignal) {
    return request(this.url(path, query), {
      method: 'GET',
      dispatcher: this.agent,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal,
      bodyTimeout: 0,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private url(path: string, query: Record<string, string | undefined> = {}): URL {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    return url;
  }
}

/** Who the token belongs to (TokenReview, asked as the server), or a 401 saying why not. */
export async function reviewToken(client: KubeClient, token: string): Promise<WebUser> {
  const review = await client.request<{
    status?: { authenticated?: boolean; error?: string; user?: { username?: string; groups?: string[] } };
  }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
  });
  const status = review.status;
  if (!status?.authenticated || !status.user?.username)
    throw new WebError(
      401,
      `the token was not accepted by the Kubernetes API${status?.error ? ': ' + status.error : ''}`,
    );
  return { name: status.user.username, groups: status.user.groups ?? [] };
}

/**
 * An answer of the kube-apiserver that is not a success, as the page shows it: a 403 names the
 * verb and resource ("you may not patch virtualmachines in namespace a"), with the API server's
 * own message beside it.
 */
export function kubeError(
  answer: KubeAnswer,
  attempt: { verb: string; resource: string; namespace?: string | undefined; name?: string | undefined },
): WebError {
  const message = (answer.body as { message?: string } | undefined)?.message ?? `HTTP ${answer.status}`;
  if (answer.status === 403) {
    const what = attempt.name ? `${attempt.resource} "${attempt.name}"` : attempt.resource;
    // namespace undefined: every namespace's collection; '' : a cluster-scoped resource.
    const where = attempt.namespace
      ? ` in namespace ${attempt.namespace}`
      : attempt.namespace === undefined && !attempt.name
        ? ' in all namespaces'
        : '';
    return new WebError(403, `you may not ${attempt.verb} ${what}${where}`, {
      verb: attempt.verb,
      resource: attempt.resource,
      apiMessage: message,
    });
  }
  if (answer.status === 401)
    return new WebError(401, 'the Kubernetes API no longer accepts your token: log in again', { apiMessage: message });
  return new WebError(answer.status >= 400 ? answer.status : 502, message);
}
