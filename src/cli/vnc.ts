// `virtfleet vm vnc NAME`: a local TCP port for any VNC viewer, as `virtctl vnc --proxy-only`.
// Each connection a viewer makes is bridged to the VM's vnc subresource (a WebSocket carrying
// RFB) through kube-apiserver with the kubeconfig's credentials, so RBAC decides as for the
// console. Runs until Ctrl-C. Bounded buffers: the side that is ahead is paused.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { connectSubresource, resolveVm } from './console.js';

/** Bytes waiting on either side beyond which the other side is paused. */
const MAX_BUFFERED = 1 << 20;
/** Below the API server's WebSocket message limit (64 KiB). */
const MAX_MESSAGE = 32 << 10;

interface VncFlags {
  namespace?: string;
  kubeconfig?: string;
  port: number;
  address: string;
}

/** What to run to view the VM, for a viewer on `address`:`port`. */
export function viewerCommands(address: string, port: number): string[] {
  const host = address.includes(':') ? `[${address}]` : address;
  return [`vncviewer ${host}::${port}`, `remote-viewer vnc://${host}:${port}`];
}

/** Bridges one viewer connection to a new vnc WebSocket; refusals and ends are printed. */
async function serveViewer(
  viewer: Socket,
  config: KubeConfig,
  namespace: string,
  name: string,
  log: (line: string) => void,
): Promise<void> {
  viewer.pause();
  viewer.on('error', () => undefined);
  let ws: WebSocket;
  try {
    ws = await connectSubresource(config, namespace, name, 'vnc');
  } catch (error) {
    log(`error: ${error instanceof Error ? error.message : String(error)}`);
    viewer.destroy();
    return;
  }
  if (viewer.destroyed) {
    ws.close(1000, 'viewer left');
    return;
  }
  const from = `${viewer.remoteAddress}:${viewer.remotePort}`;
  log(`viewer ${from} connected to vm/${name}`);
  // Viewer → server: pause the viewer while the WebSocket holds too much.
  const drained = () => {
    if (viewer.isPaused() && ws.bufferedAmount <= MAX_BUFFERED / 2) viewer.resume();
  };
  viewer.on('data', (data: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    for (let at = 0; at < data.length; at += MAX_MESSAGE) ws.send(data.subarray(at, at + MAX_MESSAGE), drained);
    if (ws.bufferedAmount > MAX_BUFFERED) viewer.pause();
  });
  // Server → viewer: pause the WebSocket while the viewer does not read.
  ws.on('message', (data: Buffer) => {
    viewer.write(data);
    if (viewer.writableLength > MAX_BUFFERED && !ws.isPaused) ws.pause();
  });
  viewer.on('drain', () => {
    if (ws.isPaused) ws.resume();
  });
  viewer.on('close', () => ws.close(1000, 'viewer left'));
  ws.on('error', (error) => log(`error: ${error.message}`));
  ws.on('close', (code, reason) => {
    if (!viewer.destroyed) {
      log(`vnc of vm/${name} closed (${code}): ${reason.toString() || 'the connection ended'}`);
      viewer.end();
    }
  });
  viewer.resume();
}

/** Listens for viewers until SIGINT/SIGTERM; resolves with the exit status. */
export async function runVnc(name: string, flags: VncFlags): Promise<number> {
  const resolved = resolveVm(name, flags);
  if (typeof resolved === 'number') return resolved;
  const { config, namespace } = resolved;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const viewers = new Set<Socket>();
  const server: Server = createServer((viewer) => {
    viewers.add(viewer);
    viewer.on('close', () => viewers.delete(viewer));
    void serveViewer(viewer, config, namespace, name, log);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(flags.port, flags.address, () => resolve());
    });
  } catch (error) {
    log(`error: cannot listen on ${flags.address}:${flags.port}: ${(error as Error).message}`);
    return 1;
  }
  const port = (server.address() as AddressInfo).port;
  const [vncviewer, remoteViewer] = viewerCommands(flags.address, port);
  process.stdout.write(
    `VNC of vm/${name} in ${namespace} on ${flags.address}:${port}; connect a viewer:\n` +
      `  ${vncviewer}\n  ${remoteViewer}\n`,
  );
  log('Ctrl-C stops');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  for (const viewer of viewers) viewer.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('a TCP port from 0 (any free port) to 65535');
  return port;
}

export function vncCommand(): Command {
  return new Command('vnc')
    .argument('<name>', 'the VirtualMachine')
    .description(
      "a local port for any VNC viewer, bridged to the VM's VNC server (spec.graphics) through the Kubernetes API with your kubeconfig's credentials; prints the command to run; Ctrl-C stops",
    )
    .option('-n, --namespace <namespace>', "namespace of the VM (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--port <port>', 'local TCP port to listen on (0: a free one)', portNumber, 0)
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .action(async (name: string, flags: VncFlags) => {
      process.exitCode = await runVnc(name, flags);
    });
}
