// Watches relayed to the page as Server-Sent Events, as the person logged in. The page gets a
// `snapshot` (the list), then a `change` per watch event; every event's id is the
// resourceVersion, so a browser that reconnects (EventSource sends Last-Event-ID) resumes from
// there without a new list, and when the kube-apiserver's watch ends or drops this relay
// watches again from the last resourceVersion it relayed. Only a 410 Gone (that version is
// compacted away) makes a fresh snapshot. `status` events tell the page when what it shows may
// be stale (reconnecting) and when it is live again; `failure` ends the stream (a 403 or a
// session that ended) and the page shows it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../observability/logging.js';
import { resourcePath, type KubeObject, type ResourceType } from '../runtime/kube-client.js';
import { SECURITY_HEADERS, type WebError } from './http.js';
import { kubeError, type KubeAnswer, type UserKube } from './kube.js';

export interface WatchScope {
  type: ResourceType;
  /** The name the page knows the resource by (virtualmachines, hostpools, events). */
  resource: string;
  namespace?: string | undefined;
  fieldSelector?: string | undefined;
}

const HEARTBEAT_MS = 20_000;
const RETRY_MS = 1_000;
const WATCH_SECONDS = 300;

/** Drops what only makes objects bigger on the wire. */
function slim(object: KubeObject): KubeObject {
  if (!object.metadata?.managedFields) return object;
  const { managedFields: _drop, ...metadata } = object.metadata;
  return { ...object, metadata };
}

class Sse {
  constructor(private readonly response: ServerResponse) {}
  send(event: string, data: unknown, id?: string): void {
    this.response.write(`event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  }
  /** Moves the page's Last-Event-ID on without an event (a bookmark). */
  mark(id: string): void {
    this.response.write(`id: ${id}\n\n`);
  }
  comment(text: string): void {
    this.response.write(`: ${text}\n\n`);
  }
}

/** An answer worth asking again (the API server starting or overloaded), not a refusal to show. */
function transient(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Resumable only from a resourceVersion the page got from us (digits, as kube-apiserver's are). */
export function resumeVersion(lastEventId: string | string[] | undefined): string | undefined {
  return typeof lastEventId === 'string' && /^\d{1,20}$/.test(lastEventId) ? lastEventId : undefined;
}

export async function relayWatch(options: {
  kube: UserKube;
  /** The current token, or undefined once the session ended (checked before each request). */
  token: () => string | undefined;
  scope: WatchScope;
  request: IncomingMessage;
  response: ServerResponse;
  logger: Logger;
  /** Aborted when the session ends (logout) or the server stops. */
  signal: AbortSignal;
}): Promise<void> {
  const { kube, scope, request, response, logger } = options;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal.addEventListener('abort', onAbort);
  // The response's close: the page went away (the request's own close may come as soon as it is read).
  response.once('close', onAbort);
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  const sse = new Sse(response);
  response.write(`retry: ${RETRY_MS}\n\n`);
  const heartbeat = setInterval(() => sse.comment('ping'), HEARTBEAT_MS);
  const path = resourcePath(scope.type, scope.namespace);
  const attempt = { verb: 'list', resource: scope.resource, namespace: scope.type.namespaced ? scope.namespace : '' };
  let version = resumeVersion(request.headers['last-event-id']);
  let live = false;
  const fail = (error: WebError) => {
    sse.send('failure', { code: error.code, message: error.message, ...error.details });
    stop.abort();
  };
  try {
    while (!stop.signal.aborted) {
      const token = options.token();
      if (token === undefined) {
        fail({ code: 401, message: 'the session ended: log in again' } as WebError);
        break;
      }
      try {
        if (version === undefined) {
          const answer = await kube.call(token, 'GET', path, { query: { fieldSelector: scope.fieldSelector } });
          if (transient(answer.status)) throw new Error(`list: HTTP ${answer.status}`);
          if (answer.status !== 200) {
            fail(kubeError(answer, attempt));
            break;
          }
          const list = answer.body as { metadata?: { resourceVersion?: string }; items?: KubeObject[] };
          version = list.metadata?.resourceVersion ?? '0';
          sse.send('snapshot', { items: (list.items ?? []).map(slim) }, version);
        }
        if (!live) sse.send('status', { state: 'live' });
        live = true;
        version = await watchOnce(kube, token, path, scope.fieldSelector, version, sse, stop.signal, (answer) =>
          fail(kubeError(answer, { ...attempt, verb: 'watch' })),
        );
      } catch (error) {
        if (stop.signal.aborted) break;
        logger.debug({ err: (error as Error).message, resource: scope.resource }, 'web watch dropped; resuming');
        if (live) sse.send('status', { state: 'reconnecting', message: (error as Error).message });
        live = false;
        await delay(RETRY_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    }
  } finally {
    clearInterval(heartbeat);
    options.signal.removeEventListener('abort', onAbort);
    response.end();
  }
}

/**
 * One watch from `version` until it ends; returns the version to go on from (undefined after a
 * 410 Gone: list again). Throws when the connection drops, so the caller says "reconnecting".
 */
async function watchOnce(
  kube: UserKube,
  token: string,
  path: string,
  fieldSelector: string | undefined,
  version: string,
  sse: Sse,
  signal: AbortSignal,
  fail: (answer: KubeAnswer) => void,
): Promise<string | undefined> {
  const response = await kube.stream(
    token,
    path,
    {
      watch: 'true',
      resourceVersion: version,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(WATCH_SECONDS),
      fieldSelector,
    },
    signal,
  );
  if (response.statusCode === 410) {
    await response.body.dump();
    return undefined;
  }
  if (transient(response.statusCode)) {
    await response.body.dump();
    throw new Error(`watch: HTTP ${response.statusCode}`);
  }
  if (response.statusCode !== 200) {
    const text = await response.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text.slice(0, 500) };
    }
    fail({ status: response.statusCode, body });
    return version;
  }
  let current: string | undefined = version;
  let buffered = '';
  for await (const chunk of response.body) {
    buffered += (chunk as Buffer).toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
      if (event.type === 'ERROR') {
        // 410: the version is gone; any other error ends this watch and the next resumes.
        if (event.object.code === 410) current = undefined;
        response.body.destroy();
        return current;
      }
      const next = event.object.metadata?.resourceVersion;
      if (next) current = next;
      if (event.type === 'BOOKMARK') {
        if (next) sse.mark(next);
        continue;
      }
      sse.send('change', { type: event.type, object: slim(event.object) }, next);
    }
  }
  return current;
}
