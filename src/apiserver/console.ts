// The console subresource: a WebSocket carrying the VM's serial console both ways, bridged to
// the binding's console stream (virDomainOpenConsole) on the VM's current host. Buffers are
// bounded both ways: output a client does not read ends its session once more than
// maxOutputBytes wait in the socket; input waits for libvirt's write at most maxInputBytes
// ahead, after which the socket is paused (TCP back-pressure to the client).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { HostUnavailableError, type LibvirtConnectionPool } from '../hypervisors/libvirt/connection-pool.js';
import type { HostCredentials } from '../hypervisors/libvirt/credentials.js';
import { isLibvirtError, type LibvirtConsole } from '../hypervisors/libvirt/native/index.js';
import type { Logger } from '../observability/logging.js';
import { StatusError } from './responses.js';
import { CLOSE, type SessionRegistry } from './sessions.js';
import type { VmLocation } from './vm-location.js';

export interface ConsoleBuffers {
  /** Output queued in the WebSocket beyond which the session is ended as a slow client. */
  maxOutputBytes: number;
  /** Input waiting for libvirt beyond which reading from the client pauses. */
  maxInputBytes: number;
}

export const DEFAULT_BUFFERS: ConsoleBuffers = { maxOutputBytes: 1 << 20, maxInputBytes: 64 << 10 };

/** WebSocket close reasons are at most 123 bytes. */
export function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > 123) reason = `${reason.slice(0, reason.length - 2)}…`;
  return reason;
}

const PING_MS = 30_000;

export class ConsoleBridge {
  /** Credentials per URI, from the latest request for a host; the pool asks at each (re)connect. */
  private readonly credentials = new Map<string, HostCredentials | undefined>();
  /** Console streams being closed, by VM: the next session waits for them, or libvirt finds the console busy. */
  private readonly closing = new Map<string, Promise<void>>();

  constructor(
    private readonly pool: LibvirtConnectionPool,
    private readonly sessions: SessionRegistry,
    private readonly wss: WebSocketServer,
    private readonly logger: Logger,
    private readonly buffers: ConsoleBuffers = DEFAULT_BUFFERS,
  ) {
    pool.setCredentials((uri) => this.credentials.get(uri));
  }

  /**
   * Claims the session, opens the console on the host, then completes the upgrade. Throws a
   * StatusError (nothing written to the socket yet) when any of that fails.
   */
  async open(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    user: string,
    location: VmLocation,
    force: boolean,
  ): Promise<void> {
    const vmKey = `${location.vm.metadata.namespace}/${location.vm.metadata.name}`;
    let ws: WebSocket | undefined;
    let stream: LibvirtConsole | undefined;
    let endedEarly: { code: number; reason: string } | undefined;
    const end = (code: number, reason: string) => {
      if (ws) ws.close(code, closeReason(reason));
      else endedEarly = { code, reason };
      void stream?.close().catch(() => undefined);
    };
    const { session, release } = this.sessions.claim(user, vmKey, force, end);
    try {
      await this.closing.get(vmKey);
      stream = await this.openStream(location, force);
    } catch (error) {
      release();
      throw error;
    }
    if (endedEarly || socket.destroyed) {
      release();
      await stream.close().catch(() => undefined);
      if (endedEarly) throw new StatusError(409, 'Conflict', endedEarly.reason);
      return;
    }
    const opened = stream;
    this.wss.handleUpgrade(request, socket, head, (socketWs) => {
      ws = socketWs;
      this.bridge(
        socketWs,
        opened,
        { user, vm: vmKey, host: location.host, id: session.id },
        location.uri,
        release,
        end,
      );
    });
  }

  private async openStream(location: VmLocation, force: boolean): Promise<LibvirtConsole> {
    this.credentials.set(location.uri, location.credentials);
    const where = `host ${location.host}`;
    let connection;
    try {
      connection = await this.pool.connection(location.uri);
    } catch (error) {
      const why = error instanceof HostUnavailableError ? error.message : String(error);
      throw new StatusError(503, 'ServiceUnavailable', `${where} cannot be reached: ${why}`);
    }
    try {
      return await connection.domainOpenConsole(location.uuid, { force });
    } catch (error) {
      if (!isLibvirtError(error)) throw error;
      if (error.codeName === 'VIR_ERR_NO_DOMAIN')
        throw new StatusError(
          409,
          'Conflict',
          `the VM's domain is not on ${where} (it may have just moved: connect again to follow status.host)`,
        );
      if (/console.*(active|session)|active.*console/i.test(error.message))
        throw new StatusError(
          409,
          'Conflict',
          `the console is open elsewhere (another virtfleet-api replica or \`virsh console\` on ${location.host}); ` +
            'take it over with --force (?force=true)',
          { causes: [{ reason: 'ConsoleInUse', message: error.message }] },
        );
      throw new StatusError(502, 'InternalError', `${where} refused the console: ${error.message}`);
    }
  }

  private bridge(
    ws: WebSocket,
    stream: LibvirtConsole,
    who: { user: string; vm: string; host: string; id: number },
    uri: string,
    release: () => void,
    end: (code: number, reason: string) => void,
  ): void {
    const started = Date.now();
    let bytesOut = 0;
    let bytesIn = 0;
    let inputPending = 0;
    let writes: Promise<unknown> = Promise.resolve();
    this.logger.info({ ...who }, 'console session opened');

    stream.onData((data) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > this.buffers.maxOutputBytes) {
        end(CLOSE.slowClient, `client too slow: over ${this.buffers.maxOutputBytes} bytes of console output unread`);
        return;
      }
      bytesOut += data.length;
      ws.send(data, { binary: true });
    });
    stream.onEnd((error) => {
      const reason = error
        ? `console stream of host ${who.host} failed: ${error.message}`
        : `console ended on host ${who.host} (domain stopped or moved; connect again to follow it)`;
      end(CLOSE.streamEnded, reason);
    });

    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (chunk.length === 0) return;
      inputPending += chunk.length;
      bytesIn += chunk.length;
      if (inputPending > this.buffers.maxInputBytes && !ws.isPaused) ws.pause();
      writes = writes
        .then(() => stream.write(chunk))
        .then(
          () => {
            inputPending -= chunk.length;
            if (ws.isPaused && inputPending <= this.buffers.maxInputBytes / 2) ws.resume();
          },
          (error: unknown) => {
            inputPending -= chunk.length;
            end(
              CLOSE.streamEnded,
              `write to the console failed: ${error instanceof Error ? error.message : String(error)}`,
            );
          },
        );
    });

    // A host that stops answering ends no stream by itself: the connection's keepalive notices,
    // and the session ends with that reason instead of hanging.
    const unsubscribe = this.pool.subscribe(uri, (event) => {
      if (event.type !== 'disconnected') return;
      const detail = event.message ? `: ${event.message}` : '';
      end(CLOSE.streamEnded, `connection to host ${who.host} lost (${event.reason}${detail})`);
    });
    const ping = setInterval(() => ws.ping(), PING_MS);
    ws.on('error', (error) => this.logger.debug({ ...who, err: error.message }, 'console websocket error'));
    ws.on('close', (code, reason) => {
      clearInterval(ping);
      unsubscribe();
      const closed = stream.close().catch(() => undefined);
      this.closing.set(who.vm, closed);
      void closed.then(() => {
        if (this.closing.get(who.vm) === closed) this.closing.delete(who.vm);
      });
      release();
      this.logger.info(
        { ...who, code, reason: reason.toString(), bytesIn, bytesOut, seconds: (Date.now() - started) / 1000 },
        'console session closed',
      );
    });
  }
}
