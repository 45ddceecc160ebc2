// Small HTTP helpers of the web console's server: JSON in and out, the session cookie, and the
// headers every answer carries (no framing, no sniffing, no caching of anything personal).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';

export const SESSION_COOKIE = 'virtfleet-session';
/** The header a page sends its CSRF token in, with every write. */
export const CSRF_HEADER = 'x-csrf-token';
const MAX_BODY = 16 << 10;

/** An answer to the page: `code` with `{ message }`, and for a 403 what was refused. */
export class WebError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/**
 * The page's Content-Security-Policy. Scripts only from the console itself, never inline.
 * `styleNonce` (index.html only, new per response): <style> elements carrying it may apply,
 * which the page gives only to those xterm.js's DOM renderer creates (web/src/console/csp.ts);
 * style attributes and any other <style> stay refused.
 */
export function contentSecurityPolicy(styleNonce?: string): string {
  const style = styleNonce ? `style-src 'self' 'nonce-${styleNonce}'` : "style-src 'self'";
  return `default-src 'self'; script-src 'self'; ${style}; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`;
}

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': contentSecurityPolicy(),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000',
};

export function sendJson(response: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  response.writeHead(code, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

export function sendError(response: ServerResponse, error: WebError): void {
  sendJson(response, error.code, { code: error.code, message: error.message, ...error.details });
}

/** The request's JSON body (at most 16 KiB); only `application/json`, which a cross-site form cannot send. */
export async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw new WebError(415, 'send the body as JSON (content-type: application/json)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new WebError(413, `the body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new WebError(400, 'the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new WebError(400, 'the body is not a JSON object');
  return parsed as Record<string, unknown>;
}

export function sessionIdOf(request: IncomingMessage): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  return parseCookies(header)[SESSION_COOKIE] || undefined;
}

/** The session cookie: never readable by scripts, HTTPS only, never sent from another site. */
export function sessionCookie(id: string, maxAgeSeconds: number): string {
  return serializeCookie(SESSION_COOKIE, id, {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: maxAgeSeconds,
  });
}

export function clearedSessionCookie(): string {
  return serializeCookie(SESSION_COOKIE, '', {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: 0,
  });
}
