// `virtfleet api` in the local stack: run beside the controller (restarted with backoff when it
// exits, as a Deployment would), on loopback with the serving cert of the local PKI, and
// registered with the aggregator (src/devstack/aggregation.ts) so that `virtfleet vm console`
// reaches it through kube-apiserver as in a cluster.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../runtime/kube-client.js';
import { registerLocalApiServer, waitForApiService } from './aggregation.js';
import type { Pki } from './pki.js';
import { freePort } from './ports.js';
import { Restarting } from './process.js';

export interface LocalApiServerOptions {
  /** Command that starts it, e.g. [node, main.js, 'api']. */
  command: string[];
  kubeconfig: string;
  pki: Pki;
  logsDir: string;
  log: (line: string) => void;
  stopSignal: AbortSignal;
  /** Also serve the web console (`--web-port`) on this loopback port. */
  webPort?: number;
}

function readyz(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`https://127.0.0.1:${port}/readyz`, { ca, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Starts it, waits for /readyz, registers the APIService and waits until the aggregator finds it Available. */
export async function startLocalApiServer(
  options: LocalApiServerOptions,
): Promise<{ process: Restarting; port: number; webPort?: number }> {
  const port = await freePort();
  const [command, ...args] = options.command;
  const ca = readFileSync(options.pki.caCert);
  const server = new Restarting({
    name: 'virtfleet api',
    command: command ?? process.execPath,
    // prettier-ignore
    args: [...args, '--kubeconfig', options.kubeconfig, '--bind-address', '127.0.0.1', '--secure-port', String(port),
      '--tls-cert-file', options.pki.apiServingCert, '--tls-private-key-file', options.pki.apiServingKey,
      ...(options.webPort !== undefined ? ['--web-port', String(options.webPort)] : [])],
    logFile: join(options.logsDir, 'api.log'),
    ready: () => readyz(port, ca),
    readyTimeoutMs: 30_000,
    log: options.log,
    stopSignal: options.stopSignal,
  });
  await server.start();
  const config = new KubeConfig();
  config.loadFromFile(options.kubeconfig);
  const client = new KubeClient(config, 'virtfleet-devstack');
  await registerLocalApiServer(client, port, options.pki.caCert);
  await waitForApiService(client, 60_000);
  return { process: server, port, ...(options.webPort !== undefined ? { webPort: options.webPort } : {}) };
}
