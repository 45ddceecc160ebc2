// A small REST client for any Kubernetes resource, on client-node's
// authentication (certificates, tokens, exec plugins) and its undici
// transport. Generic paths keep the runtime free of per-kind API classes; a
// request counter lets tests and benches prove "no writes in steady state".
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { STATUS_CODES } from 'node:http';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { traceNow, traces } from './trace.js';

export interface ResourceType {
  kind: string;
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An error answer of the API server, with its HTTP status and Status reason. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const isNotFound = (error: unknown) => error instanceof ApiError && error.status === 404;
export const isConflict = (error: unknown) => error instanceof ApiError && error.status === 409;
export const isGone = (error: unknown) => error instanceof ApiError && error.status === 410;

export type PatchType = 'merge' | 'json' | 'apply';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface RequestCounts {
  reads: number;
  writes: number;
  /** Writes by "METHOD path", for telling who wrote what. */
  writesByPath: Map<string, number>;
}

/** A name or namespace that is not a valid Kubernetes name: refused before any request is made. */
export class InvalidNameError extends Error {
  constructor(
    readonly field: 'name' | 'namespace',
    readonly value: string,
    reason: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidNameError';
  }
}

// RFC 1123, as the API server checks object names (DNS subdomain) and namespaces (DNS label).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `value` is not a valid object name (a DNS subdomain), or undefined when it is. */
export function objectNameProblem(value: string): string | undefined {
  if (value === '') return 'a name may not be empty';
  if (value.length > 253) return 'must be no more than 253 characters';
  if (!DNS_SUBDOMAIN.test(value))
    return "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
  return undefined;
}

/** Why `value` is not a valid namespace (a DNS label), or undefined when it is. */
export function namespaceProblem(value: string): string | undefined {
  if (value === '') return 'a namespace may not be empty';
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!DNS_LABEL.test(value))
    return "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name')";
  return undefined;
}

/** Throws InvalidNameError when `value` is not a valid object name. */
export function checkObjectName(value: string): void {
  const problem = objectNameProblem(value);
  if (problem) throw new InvalidNameError('name', value, problem);
}

/** Throws InvalidNameError when `value` is not a valid namespace. */
export function checkNamespace(value: string): void {
  const problem = namespaceProblem(value);
  if (problem) throw new InvalidNameError('namespace', value, problem);
}

/**
 * `/apis/group/version[/namespaces/ns]/plural[/name[/subresource]]`. A name or namespace that is
 * given must be a valid Kubernetes name: `.`, `..`, `a/b` or `%2F` would otherwise be normalised
 * away or split, and a DELETE meant for one object would hit the whole collection. An empty string
 * is not "no name": callers that mean the collection pass undefined.
 */
export function resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  // A collection of a namespaced kind without a namespace is every namespace's (list, watch).
  const scoped = type.namespaced && (name !== undefined || !!namespace);
  if (scoped) checkNamespace(namespace ?? '');
  if (name !== undefined) checkObjectName(name);
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const ns = scoped ? `/namespaces/${namespace}` : '';
  const item = name !== undefined ? `/${name}` : '';
  const sub = name !== undefined && subresource ? `/${subresource}` : '';
  return `${base}${ns}/${type.plural}${item}${sub}`;
}

/** How long one set of credentials and its connection pool is reused before it is built again. */
const AUTH_REUSE_MS = 60_000;

interface Authentication {
  headers: Record<string, string>;
  dispatcher: unknown;
  builtAt: number;
}

export class KubeClient {
  readonly counts: RequestCounts = { reads: 0, writes: 0, writesByPath: new Map() };
  private auth: Promise<Authentication> | undefined;

  constructor(
    readonly config: KubeConfig,
    private readonly fieldManager = 'virtfleet-controller',
  ) {}

  /**
   * Headers and connection pool for requests. client-node builds a new pool (re-reading
   * certificate and key) on every applySecurityAuthentication call, so calling it per request
   * opened a new TLS connection each time: 40 % of the controller's CPU in the scale bench.
   * Built once and reused for a minute, so rotated tokens and certificates are still picked up.
   */
  private async authentication(): Promise<Authentication> {
    const current = this.auth;
    if (current) {
      const auth = await current;
      if (Date.now() - auth.builtAt < AUTH_REUSE_MS) return auth;
      if (this.auth !== current) return this.authentication();
      // The old pool is not closed: a request may have just taken it. Its idle
      // sockets close by themselves after undici's keep-alive timeout.
    }
    const building = (async () => {
      const context = new RequestContext(this.server, HttpMethod.GET);
      await this.config.applySecurityAuthentication(context);
      return { headers: context.getHeaders(), dispatcher: context.getDispatcher(), builtAt: Date.now() };
    })();
    this.auth = building;
    building.catch(() => {
      if (this.auth === building) this.auth = undefined;
    });
    return building;
  }

  get server(): string {
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return cluster.server;
  }

  async request<T>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | boolean | undefined>;
    } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    if (WRITE_METHODS.has(method)) {
      this.counts.writes++;
      const key = `${method} ${path}`;
      this.counts.writesByPath.set(key, (this.counts.writesByPath.get(key) ?? 0) + 1);
    } else {
      this.counts.reads++;
    }
    const start = traces.kubeRequest.hasSubscribers ? traceNow() : 0;
    const auth = await this.authentication();
    const headers: Record<string, string> = { ...auth.headers, accept: 'application/json' };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/json';
      body = JSON.stringify(options.body);
    }
    // undici's request rather than its fetch: the same connection pool, without the WHATWG
    // Request/Response/stream objects fetch makes for every call (a tenth of the controller's
    // CPU in the scale bench).
    const response = await undiciRequest(url, {
      method: method as Dispatcher.HttpMethod,
      headers,
      body,
      dispatcher: auth.dispatcher as Dispatcher,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.body.text();
    const code = response.statusCode;
    const ok = code >= 200 && code <= 299;
    if (start) traces.kubeRequest.publish({ method, path, status: code, start, ms: traceNow() - start });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch (error) {
      if (ok) throw error;
      parsed = undefined; // an error page of a proxy in between: the status code says enough
    }
    if (!ok) {
      const status = (parsed ?? {}) as { reason?: string; message?: string; details?: unknown };
      throw new ApiError(
        code,
        status.reason ?? STATUS_CODES[code] ?? '',
        status.message ?? `${method} ${path}: HTTP ${code}`,
        status.details,
      );
    }
    return parsed as T;
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request('GET', resourcePath(type, namespace, name));
  }

  list<T extends KubeObject>(
    type: ResourceType,
    query: {
      namespace?: string;
      labelSelector?: string;
      fieldSelector?: string;
      limit?: number;
      continue?: string;
    } = {},
  ): Promise<KubeList<T>> {
    const { namespace, ...rest } = query;
    return this.request('GET', resourcePath(type, namespace), { query: { ...rest } });
  }

  create<T extends KubeObject>(type: ResourceType, object: T): Promise<T> {
    return this.request('POST', resourcePath(type, object.metadata?.namespace), { body: object });
  }

  replace<T extends KubeObject>(type: ResourceType, object: T): Promise<T> {
    return this.request('PUT', resourcePath(type, object.metadata?.namespace, object.metadata?.name), { body: object });
  }

  patch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: { patchType?: PatchType; subresource?: string } = {},
  ): Promise<T> {
    const patchType = options.patchType ?? 'merge';
    return this.request('PATCH', resourcePath(type, namespace, name, options.subresource), {
      body: patch,
      contentType: PATCH_CONTENT_TYPES[patchType],
      query:
        patchType === 'apply' ? { fieldManager: this.fieldManager, force: true } : { fieldManager: this.fieldManager },
    });
  }

  delete(type: ResourceType, namespace: string | undefined, name: string): Promise<unknown> {
    return this.request('DELETE', resourcePath(type, namespace, name));
  }
}
