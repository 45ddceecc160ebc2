// The VM detail page's serial console and VNC: the page opens a WebSocket to the console's own
// server, which opens the access issue's subresource (virtualmachines/console or
// virtualmachines/vnc of subresources.virtfleet.io, served by `virtfleet api` behind
// kube-apiserver's aggregator) with the person's own token, so RBAC (a SubjectAccessReview on
// the subresource) decides, and relays the bytes both ways (the serial console's, or RFB).
//
// A WebSocket cannot carry the CSRF header, so: the upgrade needs the session cookie and the
// console's own Origin, and the first message from the page must be the session's CSRF token
// (`{"csrf": "…", "force": false}`); nothing is opened upstream before it. Text frames to the
// page are the proxy's own words (`{"type": "open"}`, `{"type": "refused", …}`), binary frames
// the guest's output; binary frames from the page are keystrokes.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import type { Logger } from '../observability/logging.js';
import { namespaceProblem, objectNameProblem } from '../runtime/kube-client.js';
import { sessionIdOf } from './http.js';
import type { UserKube } from './kube.js';
import { csrfMatches, type WebSessions, type WebSession } from './sessions.js';

const PATH = /^\/api\/namespaces\/([^/]+)\/virtualmachines\/([^/]+)\/(console|vnc)$/;
const SUBRESOURCE_GROUP_VERSION = 'subresources.virtfleet.io/v1alpha1';
/** Output waiting for a slow page beyond which the upstream socket pauses (TCP back-pressure to the API server). */
const MAX_BUFFERED = 1 << 20;
const HELLO_MS = 10_000;
/** How often an open session checks that its web session still lives (idle or absolute expiry). */
const SESSION_CHECK_MS = 30_000;

/** Close codes the page reads: 44xx for a refusal (the HTTP status + 4000), the API server's own 4000-4002 pass through. */
export const PROXY_CLOSE = { refused: (status: number) => 4000 + (status >= 400 && status < 600 ? status : 502) };

/** A WebSocket close reason is at most 123 bytes. */
function reason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = `${out.slice(0, out.length - 2)}…`;
  return out;
}

export interface ConsoleTarget {
  namespace: string;
  name: string;
  /** console (the serial console) or vnc (RFB). */
  subresource: string;
}

export class ConsoleProxy {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 10, perMessageDeflate: false });
  /** Open relays per web session, ended at logout. */
  private readonly open = new Map<string, Set<() => void>>();

  constructor(
    private readonly kube: UserKube,
    private readonly sessions: WebSessions,
    private readonly logger: Logger,
  ) {}

  /** An HTTP upgrade on the console's port: refused with a plain HTTP answer unless path, Origin and session are right. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'https://localhost');
    const match = PATH.exec(url.pathname);
    if (!match) return refuse(socket, 404, "no WebSocket here: only a VM's console or vnc");
    const origin = request.headers.origin;
    // Browsers always send Origin on a WebSocket; another site's page must not ride the cookie.
    if (origin !== `https://${request.headers.host ?? ''}`)
      return refuse(
        socket,
        403,
        `a console opened from ${origin ?? 'no origin'} is not accepted: open the console itself`,
      );
    const session = this.sessions.get(sessionIdOf(request));
    if (!session) return refuse(socket, 401, 'not logged in, or the session expired: log in again');
    const target = {
      namespace: decodeURIComponent(match[1]!),
      name: decodeURIComponent(match[2]!),
      subresource: match[3]!,
    };
    const bad = namespaceProblem(target.namespace) ?? objectNameProblem(target.name);
    if (bad) return refuse(socket, 400, `namespace or name ${bad}`);
    this.wss.handleUpgrade(request, socket, head, (page) => this.greet(page, session, target));
  }

  /** Ends every relay of a web session (logout). */
  endSession(id: string): void {
    for (const end of this.open.get(id) ?? []) end();
    this.open.delete(id);
  }

  close(): void {
    for (const id of [...this.open.keys()]) this.endSession(id);
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }

  /** Waits for the page's first message (the CSRF token, and whether to take the console over). */
  private greet(page: WebSocket, session: WebSession, target: ConsoleTarget): void {
    const timer = setTimeout(() => page.close(4408, 'no CSRF token within 10 s: reload the page'), HELLO_MS);
    page.once('message', (data, isBinary) => {
      clearTimeout(timer);
      let hello: { csrf?: unknown; force?: unknown } = {};
      try {
        hello = isBinary ? {} : (JSON.parse(String(data)) as typeof hello);
      } catch {
        // not JSON: treated as no token
      }
      if (!csrfMatches(session, typeof hello.csrf === 'string' ? hello.csrf : undefined)) {
        page.close(4403, 'missing or wrong CSRF token: reload the page');
        return;
      }
      this.relay(page, session, target, hello.force === true);
    });
    page.once('close', () => clearTimeout(timer));
    page.on('error', () => undefined);
  }

  private relay(page: WebSocket, session: WebSession, target: ConsoleTarget, force: boolean): void {
    const who = { user: session.user.name, ...target };
    const upstream = new WebSocket(this.url(target, force), {
      headers: { authorization: `Bearer ${session.token}` },
      ...this.kube.tls,
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      maxPayload: 1 << 20,
    });
    let ended = false;
    const set = this.open.get(session.id) ?? new Set<() => void>();
    this.open.set(session.id, set);
    const end = (code: number, why: string) => {
      if (ended) return;
      ended = true;
      clearInterval(check);
      set.delete(endByLogout);
      if (set.size === 0 && this.open.get(session.id) === set) this.open.delete(session.id);
      if (page.readyState === WebSocket.OPEN) page.close(code, reason(why));
      else page.terminate();
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000, 'the page closed the console');
      else upstream.terminate();
      this.logger.info({ ...who, code, reason: why }, `web ${target.subresource} session closed`);
    };
    const endByLogout = () => end(4401, 'logged out');
    set.add(endByLogout);
    const check = setInterval(() => {
      if (!this.sessions.peek(session.id)) end(4401, 'the session expired: log in again');
    }, SESSION_CHECK_MS);

    upstream.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk.slice(0, 16 << 10)));
      response.on('end', () => {
        const status = response.statusCode ?? 502;
        let apiMessage = body.trim() || `HTTP ${status}`;
        try {
          apiMessage = (JSON.parse(body) as { message?: string }).message ?? apiMessage;
        } catch {
          // not a Status: the text as it came
        }
        const message =
          status === 403
            ? `you may not get virtualmachines/${target.subresource} "${target.name}" in namespace ${target.namespace}`
            : status === 401
              ? 'the Kubernetes API no longer accepts your token: log in again'
              : apiMessage;
        if (page.readyState === WebSocket.OPEN)
          page.send(JSON.stringify({ type: 'refused', code: status, message, apiMessage }));
        end(PROXY_CLOSE.refused(status), message);
      });
    });
    upstream.on('error', (error) => {
      if (ended) return; // terminate() of a refused handshake reports an error too
      if (page.readyState === WebSocket.OPEN)
        page.send(JSON.stringify({ type: 'refused', code: 502, message: `the API server: ${error.message}` }));
      end(PROXY_CLOSE.refused(502), `the API server could not be reached: ${error.message}`);
    });
    upstream.on('open', () => {
      this.logger.info({ ...who, force }, `web ${target.subresource} session opened`);
      page.send(JSON.stringify({ type: 'open' }));
    });
    upstream.on('message', (data: Buffer, isBinary) => {
      if (page.readyState !== WebSocket.OPEN) return;
      page.send(data, { binary: isBinary });
      if (page.bufferedAmount > MAX_BUFFERED && !upstream.isPaused) {
        upstream.pause();
        const drained = setInterval(() => {
          if (page.bufferedAmount <= MAX_BUFFERED / 2 || page.readyState !== WebSocket.OPEN) {
            clearInterval(drained);
            upstream.resume();
          }
        }, 50);
      }
    });
    upstream.on('close', (code, why) => end(code === 1005 || code === 1006 ? 4000 : code, why.toString() || 'ended'));
    page.on('message', (data: Buffer, isBinary) => {
      // Keystrokes (or RFB) only once the stream is open; text frames are not the guest's.
      if (!isBinary || upstream.readyState !== WebSocket.OPEN) return;
      upstream.send(data, { binary: true });
    });
    page.on('close', () => end(1000, 'the page closed the console'));
  }

  private url(target: ConsoleTarget, force: boolean): string {
    const url = new URL(this.kube.server);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    const base = url.pathname.replace(/\/$/, '');
    url.pathname =
      `${base}/apis/${SUBRESOURCE_GROUP_VERSION}/namespaces/${encodeURIComponent(target.namespace)}` +
      `/virtualmachines/${encodeURIComponent(target.name)}/${target.subresource}`;
    if (force) url.searchParams.set('force', 'true');
    return url.toString();
  }
}

function refuse(socket: Duplex, code: number, message: string): void {
  const text = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}
