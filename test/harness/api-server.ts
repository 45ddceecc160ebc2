// `virtfleet api` as its own process (as a Deployment runs it) beside the test control plane,
// registered with the aggregator. Its log goes to a file that failures quote.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/devstack/binaries.js';
import { registerLocalApiServer, waitForApiService } from '../../src/devstack/aggregation.js';
import type { Pki } from '../../src/devstack/pki.js';
import { freePort } from '../../src/devstack/ports.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';

export class ApiServerProcess {
  child: ChildProcess | undefined;
  port = 0;

  constructor(
    private readonly kubeconfig: string,
    readonly pki: Pki,
    readonly logFile: string,
    private readonly extraArgs: string[] = [],
  ) {}

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  tail(lines = 40): string {
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /** Starts the process, waits for /readyz, registers the APIService and waits until it is Available. */
  async start(client: KubeClient): Promise<void> {
    this.port = await freePort();
    const log = openSync(this.logFile, 'a');
    // prettier-ignore
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'src/cli/main.ts'), 'api',
      '--kubeconfig', this.kubeconfig, '--bind-address', '127.0.0.1', '--secure-port', String(this.port),
      '--tls-cert-file', this.pki.apiServingCert, '--tls-private-key-file', this.pki.apiServingKey, '--log-level', 'debug',
      ...this.extraArgs], { cwd: repoRoot(), stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    const ca = readFileSync(this.pki.caCert);
    for (const deadline = Date.now() + 60_000; ;) {
      if (child.exitCode !== null) throw new Error(`virtfleet api exited (code ${child.exitCode}):\n${this.tail()}`);
      const ready = await fetchReadyz(this.port, ca);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`virtfleet api not ready within 60 s:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await registerLocalApiServer(client, this.port, this.pki.caCert);
    await waitForApiService(client, 60_000);
  }

  /** Stops the process (SIGTERM: sessions are ended with a reason) and waits for its exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

async function fetchReadyz(port: number, ca: Buffer): Promise<boolean> {
  const { request } = await import('node:https');
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

/**
 * A kubeconfig of the ServiceAccount virtfleet-api with the RBAC of deploy/base/api-server-rbac.yaml
 * and a token from the TokenRequest API, written to `path`: the API server runs with what deploy/
 * grants it, no more. `kubectl` runs with an admin kubeconfig.
 */
export async function apiServiceAccountKubeconfig(
  kubectl: (args: string[]) => Promise<string>,
  server: string,
  caCert: string,
  path: string,
): Promise<string> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { writeFileSync } = await import('node:fs');
  await kubectl(['create', 'namespace', 'virtfleet-system']);
  await kubectl(['create', 'serviceaccount', 'virtfleet-api', '-n', 'virtfleet-system']);
  await kubectl(['apply', '-n', 'virtfleet-system', '-f', join(repoRoot(), 'deploy/base/api-server-rbac.yaml')]);
  const token = (await kubectl(['create', 'token', 'virtfleet-api', '-n', 'virtfleet-system', '--duration=1h'])).trim();
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server, caData: readFileSync(caCert).toString('base64') }],
    users: [{ name: 'virtfleet-api', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'virtfleet-api' }],
    currentContext: 'test',
  });
  writeFileSync(path, config.exportConfig(), { mode: 0o600 });
  return path;
}
