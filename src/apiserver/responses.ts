// Kubernetes Status answers of `virtfleet api`, on an HTTP response or, before a WebSocket
// upgrade, on the raw socket: clients (kubectl, client-go, our CLI) read `message` and `reason`.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'Conflict'
  | 'BadRequest'
  | 'TooManyRequests'
  | 'ServiceUnavailable'
  | 'InternalError'
  | 'MethodNotAllowed'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType';

/** An answer other than 2xx, with what the user should do in its message. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'StatusError';
  }
}

export function statusBody(error: StatusError): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: error.message,
    reason: error.reason,
    ...(error.details ? { details: error.details } : {}),
    code: error.code,
  });
}

export function sendJson(response: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export function sendStatus(response: ServerResponse, error: StatusError): void {
  const text = statusBody(error);
  response.writeHead(error.code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** The answer to an upgrade request that is refused: a plain HTTP response, then the socket is closed. */
export function refuseUpgrade(socket: Duplex, error: StatusError): void {
  if (socket.destroyed) return;
  const text = statusBody(error);
  socket.end(
    `HTTP/1.1 ${error.code} ${STATUS_CODES[error.code] ?? ''}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      'Connection: close\r\n\r\n' +
      text,
  );
}

export function internalError(error: unknown): StatusError {
  return error instanceof StatusError
    ? error
    : new StatusError(500, 'InternalError', error instanceof Error ? error.message : String(error));
}
