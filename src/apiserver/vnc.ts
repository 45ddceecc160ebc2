// The vnc subresource: a WebSocket carrying RFB both ways between the client and the VM's VNC
// server, which QEMU runs where the HostPool's spec.graphics.listen says (src/hosts/vnc-target.ts
// reads that from status.graphics). The API server connects to it with plain TCP: a network
// listen is reachable from wherever `virtfleet api` runs; a socket listen only on the host
// itself. Buffers are bounded both ways by pausing the side that is ahead: VNC output waiting in
// the WebSocket pauses reading from the VNC server, client input waiting for the VNC server
// pauses reading from the WebSocket (TCP back-pressure both ways, no memory growth).
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../controllers/resources.js';
import { vncTarget, type VncTarget } from '../hosts/vnc-target.js';
import type { Logger } from '../observability/logging.js';
import { isNotFound, type KubeClient } from '../runtime/kube-client.js';
import { closeReason, type ConsoleBuffers } from './console.js';
import { StatusError } from './responses.js';
import { CLOSE, type SessionRegistry } from './sessions.js';

const CONNECT_TIMEOUT_MS = 10_000;
const PING_MS = 30_000;

/** Whether a libvirt URI names this machine (no host part, or the unix transport): its UNIX sockets are ours to open. */
export function uriIsLocal(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.hostname === '' || url.protocol.endsWith('+unix:');
  } catch {
    return false;
  }
}

export class VncBridge {
  /** Distinguishes sessions in the registry: VNC servers take several viewers, so no one-writer rule. */
  private nextKey = 1;

  constructor(
    private readonly client: KubeClient,
    private readonly sessions: SessionRegistry,
    private readonly wss: WebSocketServer,
    private readonly logger: Logger,
    private readonly buffers: ConsoleBuffers,
  ) {}

  /**
   * Finds the VNC server, connects to it, then completes the upgrade. Throws a StatusError
   * (nothing written to the socket yet) when any of that fails.
   */
  async open(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    user: string,
    namespace: string,
    name: string,
  ): Promise<void> {
    const target = await this.locate(namespace, name);
    const vmKey = `${namespace}/${name}`;
    let ws: WebSocket | undefined;
    let vnc: Socket | undefined;
    let endedEarly: string | undefined;
    const end = (code: number, reason: string) => {
      if (ws) ws.close(code, closeReason(reason));
      else endedEarly = reason;
      vnc?.destroy();
    };
    const { session, release } = this.sessions.claim(user, `${vmKey}#vnc${this.nextKey++}`, false, end);
    try {
      vnc = await this.connect(target, name);
    } catch (error) {
      release();
      throw error;
    }
    if (endedEarly || socket.destroyed) {
      release();
      vnc.destroy();
      if (endedEarly) throw new StatusError(503, 'ServiceUnavailable', endedEarly);
      return;
    }
    const opened = vnc;
    this.wss.handleUpgrade(request, socket, head, (socketWs) => {
      ws = socketWs;
      this.bridge(socketWs, opened, { user, vm: vmKey, host: target.host, id: session.id }, release, end);
    });
  }

  /** 404 (no such VM), 409 (no spec.graphics, not running, socket out of reach) or 503 (retry later). */
  private async locate(namespace: string, name: string): Promise<VncTarget> {
    const vm = await getOrUndefined(() => this.client.get<VmObject>(VIRTUAL_MACHINE, namespace, name));
    if (!vm)
      throw new StatusError(404, 'NotFound', `virtualmachines.virtfleet.io "${name}" not found`, {
        name,
        group: 'virtfleet.io',
        kind: 'virtualmachines',
      });
    const pool = await getOrUndefined(() =>
      this.client.get<PoolObject>(HOST_POOL, undefined, vm.spec.hostPoolRef.name),
    );
    const found = vncTarget(vm, pool);
    const details = { name, group: 'virtfleet.io', kind: 'virtualmachines' };
    if ('unavailable' in found) {
      const { reason, message } = found.unavailable;
      const code = reason === 'NoGraphics' || reason === 'NotRunning' ? 409 : 503;
      throw new StatusError(code, code === 409 ? 'Conflict' : 'ServiceUnavailable', message, {
        ...details,
        causes: [{ reason, message: vm.status?.phase ?? 'Pending' }],
      });
    }
    const target = found.target;
    if ('socket' in target && !uriIsLocal(target.uri))
      throw new StatusError(
        409,
        'Conflict',
        `the VNC server of ${namespace}/${name} listens on a UNIX socket on host ${target.host} (${target.uri}), ` +
          'which virtfleet api cannot reach from another machine: set graphics.listen.network in HostPool ' +
          `${vm.spec.hostPoolRef.name} (a libvirt network on every host, e.g. the management network) and restart the VM`,
        { ...details, causes: [{ reason: 'SocketNotReachable', message: target.host }] },
      );
    return target;
  }

  private connect(target: VncTarget, name: string): Promise<Socket> {
    const where =
      'socket' in target
        ? `socket ${target.socket} on host ${target.host}`
        : `${target.address}:${target.port} on host ${target.host}`;
    return new Promise((resolve, reject) => {
      const vnc = 'socket' in target ? connect(target.socket) : connect(target.port, target.address);
      const timer = setTimeout(() => {
        vnc.destroy();
        reject(
          new StatusError(503, 'ServiceUnavailable', `the VNC server of ${name} at ${where} did not answer in time`),
        );
      }, CONNECT_TIMEOUT_MS);
      vnc.once('connect', () => {
        clearTimeout(timer);
        vnc.removeAllListeners('error');
        // Until bridge() listens: an error then shows as a destroyed socket, which bridge() checks.
        vnc.on('error', () => undefined);
        resolve(vnc);
      });
      vnc.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new StatusError(
            503,
            'ServiceUnavailable',
            `cannot connect to the VNC server of ${name} at ${where}: ${error.message}`,
          ),
        );
      });
    });
  }

  private bridge(
    ws: WebSocket,
    vnc: Socket,
    who: { user: string; vm: string; host: string; id: number },
    release: () => void,
    end: (code: number, reason: string) => void,
  ): void {
    const started = Date.now();
    const { maxOutputBytes, maxInputBytes } = this.buffers;
    let bytesOut = 0;
    let bytesIn = 0;
    this.logger.info({ ...who }, 'vnc session opened');

    // VNC server → client: pause the VNC socket while the WebSocket holds more than maxOutputBytes.
    const drained = () => {
      if (vnc.isPaused() && ws.bufferedAmount <= maxOutputBytes / 2) vnc.resume();
    };
    vnc.on('data', (data: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      bytesOut += data.length;
      ws.send(data, { binary: true }, drained);
      if (ws.bufferedAmount > maxOutputBytes) vnc.pause();
    });
    // Client → VNC server: pause the WebSocket while the VNC socket holds more than maxInputBytes.
    vnc.on('drain', () => {
      if (ws.isPaused) ws.resume();
    });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (chunk.length === 0 || vnc.destroyed) return;
      bytesIn += chunk.length;
      vnc.write(chunk);
      if (vnc.writableLength > maxInputBytes && !ws.isPaused) ws.pause();
    });

    vnc.on('error', (error) => end(CLOSE.streamEnded, `VNC connection to host ${who.host} failed: ${error.message}`));
    vnc.on('close', () =>
      end(
        CLOSE.streamEnded,
        `the VNC server on host ${who.host} closed the connection (domain stopped or moved; connect again to follow it)`,
      ),
    );
    if (vnc.destroyed) end(CLOSE.streamEnded, `the VNC connection to host ${who.host} ended before the session began`);
    const ping = setInterval(() => ws.ping(), PING_MS);
    ws.on('error', (error) => this.logger.debug({ ...who, err: error.message }, 'vnc websocket error'));
    ws.on('close', (code, reason) => {
      clearInterval(ping);
      vnc.destroy();
      release();
      this.logger.info(
        { ...who, code, reason: reason.toString(), bytesIn, bytesOut, seconds: (Date.now() - started) / 1000 },
        'vnc session closed',
      );
    });
  }
}

async function getOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}
