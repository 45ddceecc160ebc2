// `virtfleet vm console NAME`: the VM's serial console in this terminal, through kube-apiserver
// (the aggregated subresource virtualmachines/console of subresources.virtfleet.io) with the
// user's own credentials from the kubeconfig (client certificate, token, exec plugin: whatever
// client-node applies), so RBAC decides as for any subresource. Raw terminal; Ctrl-] leaves.
import { Command } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { checkNamespace, checkObjectName, InvalidNameError } from '../runtime/kube-client.js';
import { KubeConfigError, loadKubeConfig } from './controller.js';

const GROUP_VERSION = 'subresources.virtfleet.io/v1alpha1';
/** Ctrl-]: leaves the console, as in virsh and telnet. */
export const ESCAPE = 0x1d;

/** The server refused the session (HTTP status and the Status message), or it could not be reached. */
export class ConsoleRefusedError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleRefusedError';
  }
}

/** The WebSocket URL of a VM subresource (console, vnc) through kube-apiserver at `server`. */
export function subresourceUrl(
  server: string,
  namespace: string,
  name: string,
  subresource: string,
  query: Record<string, string> = {},
): string {
  const url = new URL(server);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  const base = url.pathname.replace(/\/$/, '');
  url.pathname = `${base}/apis/${GROUP_VERSION}/namespaces/${encodeURIComponent(namespace)}/virtualmachines/${encodeURIComponent(name)}/${subresource}`;
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.toString();
}

export function consoleUrl(server: string, namespace: string, name: string, force: boolean): string {
  return subresourceUrl(server, namespace, name, 'console', force ? { force: 'true' } : {});
}

/** Opens the console WebSocket; rejects with ConsoleRefusedError carrying the server's reason. */
export function connectConsole(
  config: KubeConfig,
  namespace: string,
  name: string,
  options: { force?: boolean } = {},
): Promise<WebSocket> {
  return connectSubresource(config, namespace, name, 'console', options.force ? { force: 'true' } : {});
}

/** Opens a VM subresource's WebSocket with the kubeconfig's credentials; rejects with ConsoleRefusedError. */
export async function connectSubresource(
  config: KubeConfig,
  namespace: string,
  name: string,
  subresource: string,
  query: Record<string, string> = {},
): Promise<WebSocket> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new ConsoleRefusedError(0, 'the kubeconfig has no current cluster');
  const wsOptions: WebSocket.ClientOptions = { perMessageDeflate: false, handshakeTimeout: 30_000 };
  await config.applyToHTTPSOptions(wsOptions);
  const ws = new WebSocket(subresourceUrl(cluster.server, namespace, name, subresource, query), wsOptions);
  return new Promise((resolve, reject) => {
    let refused = false;
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_request, response) => {
      refused = true;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk.slice(0, 64 << 10)));
      response.on('end', () => {
        let message = body.trim() || `HTTP ${response.statusCode}`;
        try {
          const status = JSON.parse(body) as { message?: string };
          if (status.message) message = status.message;
        } catch {
          // not a Status: the text as it came
        }
        reject(new ConsoleRefusedError(response.statusCode ?? 0, message));
        ws.terminate();
      });
    });
    ws.on('error', (error) => {
      if (!refused) reject(new ConsoleRefusedError(0, `cannot connect to ${cluster.server}: ${error.message}`));
    });
  });
}

interface ConsoleFlags {
  namespace?: string;
  kubeconfig?: string;
  force: boolean;
}

/**
 * The kubeconfig and namespace for VM `name` (-n, else the context's, else default); on a bad
 * name or kubeconfig the error is printed and the exit status (2) returned instead.
 */
export function resolveVm(
  name: string,
  flags: { namespace?: string; kubeconfig?: string },
): { config: KubeConfig; namespace: string } | number {
  try {
    checkObjectName(name);
    if (flags.namespace !== undefined) checkNamespace(flags.namespace);
    const config = loadKubeConfig(flags.kubeconfig);
    const namespace = flags.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
    checkNamespace(namespace);
    return { config, namespace };
  } catch (error) {
    if (error instanceof InvalidNameError || error instanceof KubeConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/**
 * Bridges the terminal to the console until Ctrl-] or the server ends the session. Resolves with
 * the exit status: 0 when the user left, 1 when the session was ended (the reason printed).
 */
export async function runConsole(name: string, flags: ConsoleFlags): Promise<number> {
  const resolved = resolveVm(name, flags);
  if (typeof resolved === 'number') return resolved;
  const { config, namespace } = resolved;
  let ws: WebSocket;
  try {
    ws = await connectConsole(config, namespace, name, { force: flags.force });
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  process.stderr.write(`Connected to vm/${name} in ${namespace}. Escape character is ^] (Ctrl-])\r\n`);
  if (raw) stdin.setRawMode(true);
  let userLeft = false;
  const onInput = (data: Buffer) => {
    const escape = data.indexOf(ESCAPE);
    if (escape >= 0) {
      if (escape > 0) ws.send(data.subarray(0, escape));
      userLeft = true;
      ws.close(1000, 'user left');
      return;
    }
    ws.send(data);
  };
  stdin.on('data', onInput);
  stdin.resume();
  ws.on('message', (data: Buffer) => process.stdout.write(data));
  const [code, reason] = await new Promise<[number, string]>((resolve) => {
    ws.on('close', (closeCode, closeReason) => resolve([closeCode, closeReason.toString()]));
    ws.on('error', (error) => process.stderr.write(`\r\nerror: ${error.message}\r\n`));
  });
  stdin.off('data', onInput);
  if (raw) stdin.setRawMode(false);
  stdin.pause();
  if (userLeft) {
    process.stderr.write('\r\n');
    return 0;
  }
  process.stderr.write(`\r\nconsole closed (${code}): ${reason || 'the connection ended'}\r\n`);
  return 1;
}

export function consoleCommand(): Command {
  return new Command('console')
    .argument('<name>', 'the VirtualMachine')
    .description(
      "connect this terminal to the VM's serial console (through the Kubernetes API, with your kubeconfig's credentials); Ctrl-] leaves",
    )
    .option('-n, --namespace <namespace>', "namespace of the VM (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option(
      '--force',
      'take the console over from whoever holds it (their session is ended), as virsh console --force',
      false,
    )
    .action(async (name: string, flags: ConsoleFlags) => {
      process.exitCode = await runConsole(name, flags);
    });
}
