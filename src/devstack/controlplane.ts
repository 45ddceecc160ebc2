// A real etcd + kube-apiserver on loopback, for the test harness and for
// `make run`: client-certificate auth, RBAC, service-account signing keys,
// as controller-runtime's envtest sets them up, and API aggregation on (front-proxy CA and
// client cert; aggregated API servers on loopback behind ExternalName Services, see below).
// With `controllerManager`, also a real kube-controller-manager (namespace deletion, garbage collection of
// ownerReferences, service accounts...), kept running as a static pod would be.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { controlPlaneBinaries, requireBinary, type ControlPlaneBinaries } from './binaries.js';
import { ensurePki, FRONT_PROXY_CLIENT_CN, type Pki } from './pki.js';
import { freePort, portOr } from './ports.js';
import { Restarting, Supervised } from './process.js';

export interface ControlPlaneOptions {
  /** Holds data, certificates, logs and the kubeconfig. */
  stateDir: string;
  /**
   * Keep the ports of the previous start when they are free, so a kubeconfig
   * a user copied stays valid across `make run` restarts.
   */
  stablePorts?: boolean;
  /** etcd without fsync: much faster, safe only for throw-away test data. */
  unsafeNoFsync?: boolean;
  startTimeoutMs?: number;
  /**
   * Also run kube-controller-manager, so that namespaces finish deleting and ownerReferences
   * are garbage-collected. Off by default: the integration tier needs neither and saves its
   * start-up and CPU; `make run` turns it on.
   */
  controllerManager?: boolean;
  /** Where kube-controller-manager's exits and restarts are reported. */
  log?: (line: string) => void;
  /** Aborted when the owner is stopping everything: kube-controller-manager exiting then is no crash. */
  stopSignal?: AbortSignal;
  /**
   * An audit policy (audit.k8s.io/v1 Policy, as an object): the API server then writes its audit
   * log as JSON lines to `auditLogPath`. For reproductions that must tell who wrote what, when
   * (a test cannot see every write through a watch).
   */
  audit?: { policy: Record<string, unknown> };
}

export interface ControlPlaneInfo {
  server: string;
  kubeconfig: string;
  binaries: ControlPlaneBinaries;
  pids: number[];
  /** Certificates and keys, among them the front-proxy CA and `virtfleet api`'s serving cert. */
  pki: Pki;
}

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return fetch(url).then(async (response) => ({ status: response.status, body: await response.text() }));
}

function httpsGet(url: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5000,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export class ControlPlane {
  private etcd: Supervised | undefined;
  private apiserver: Supervised | undefined;
  private controllerManager: Restarting | undefined;
  private readonly dirs: { data: string; logs: string; pki: string };

  constructor(private readonly options: ControlPlaneOptions) {
    this.dirs = {
      data: join(options.stateDir, 'etcd'),
      logs: join(options.stateDir, 'logs'),
      pki: join(options.stateDir, 'pki'),
    };
  }

  get kubeconfigPath(): string {
    return join(this.options.stateDir, 'kubeconfig');
  }

  /** The API server's audit log (JSON lines), when `audit` is set. */
  get auditLogPath(): string {
    return join(this.dirs.logs, 'audit.log');
  }

  private auditArgs(): string[] {
    if (!this.options.audit) return [];
    const policy = join(this.options.stateDir, 'audit-policy.yaml');
    writeFileSync(policy, stringify(this.options.audit.policy));
    return [`--audit-policy-file=${policy}`, `--audit-log-path=${this.auditLogPath}`, '--audit-log-format=json'];
  }

  private async choosePorts(): Promise<Ports> {
    const file = join(this.options.stateDir, 'ports.json');
    const previous: Partial<Ports> =
      this.options.stablePorts && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Ports>) : {};
    const ports = {
      etcdClient: await portOr(previous.etcdClient),
      etcdPeer: await portOr(previous.etcdPeer),
      apiserver: await portOr(previous.apiserver ?? (this.options.stablePorts ? 6443 : undefined)),
    };
    // Two fresh picks can coincide; pick again until all three differ.
    while (new Set(Object.values(ports)).size < 3) ports.etcdPeer = await freePort();
    writeFileSync(file, JSON.stringify(ports));
    return ports;
  }

  async start(): Promise<ControlPlaneInfo> {
    const binaries = controlPlaneBinaries();
    for (const dir of Object.values(this.dirs)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pki = await ensurePki(this.dirs.pki);
    const ports = await this.choosePorts();
    const timeout = this.options.startTimeoutMs ?? 60_000;

    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    this.etcd = new Supervised({
      name: 'etcd',
      command: binaries.etcd,
      args: [
        '--name=virtfleet',
        `--data-dir=${this.dirs.data}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=virtfleet=${peerUrl}`,
        '--log-level=warn',
        ...(this.options.unsafeNoFsync ? ['--unsafe-no-fsync'] : []),
      ],
      logFile: join(this.dirs.logs, 'etcd.log'),
    });
    await this.etcd.waitUntilReady(async () => {
      const { status, body } = await httpGet(`${etcdUrl}/health`);
      return status === 200 && body.includes('"true"');
    }, timeout);

    const server = `https://127.0.0.1:${ports.apiserver}`;
    this.started = { binaries, pki, etcdUrl, timeout };
    this.apiserver = await this.launchApiServer(ports.apiserver, 'kube-apiserver');

    this.writeKubeconfig(server, pki);
    if (this.options.controllerManager) await this.startControllerManager(server, pki);
    return {
      server,
      kubeconfig: this.kubeconfigPath,
      binaries,
      pki,
      pids: [this.etcd.pid, this.apiserver.pid, this.controllerManager?.pid].filter(
        (pid): pid is number => pid !== undefined,
      ),
    };
  }

  private started: { binaries: ControlPlaneBinaries; pki: Pki; etcdUrl: string; timeout: number } | undefined;

  private async launchApiServer(port: number, name: string): Promise<Supervised> {
    if (!this.started) throw new Error('start() the control plane first');
    const { binaries, pki, etcdUrl, timeout } = this.started;
    const apiserver = new Supervised({
      name,
      command: binaries.kubeApiserver,
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${this.dirs.pki}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // No kubelets here, so no pods to give tokens to; and without
        // kube-controller-manager nothing would make the service accounts this
        // admission plugin waits for.
        '--disable-admission-plugins=ServiceAccount',
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        // API aggregation: the aggregator authenticates to aggregated API servers with this client
        // cert and passes the user in X-Remote-* headers, which they trust only from a cert of
        // the requestheader CA with an allowed name. There is no kube-proxy here, and
        // --enable-aggregator-routing=true cannot help: it dials a Service's EndpointSlice
        // addresses, which may not be loopback (validation refuses 127.0.0.0/8), and an API server
        // beside this one listens on loopback. Cluster routing (the default) dials an ExternalName
        // Service's name instead, so `virtfleet api` is registered behind an ExternalName Service
        // `localhost` (src/devstack/aggregation.ts); the serving cert is still checked for the
        // Service's DNS name.
        `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
        `--requestheader-allowed-names=${FRONT_PROXY_CLIENT_CN}`,
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${pki.frontProxyClientCert}`,
        `--proxy-client-key-file=${pki.frontProxyClientKey}`,
        '--v=1',
        ...this.auditArgs(),
      ],
      logFile: join(this.dirs.logs, `${name}.log`),
    });
    await apiserver.waitUntilReady(
      async () => (await httpsGet(`https://127.0.0.1:${port}/readyz`, pki)).status === 200,
      timeout * 2,
    );
    return apiserver;
  }

  get controllerManagerKubeconfigPath(): string {
    return join(this.options.stateDir, 'controller-manager.kubeconfig');
  }

  /**
   * kube-controller-manager as kubeadm runs it: its own client certificate (user
   * system:kube-controller-manager, bound by the bootstrap RBAC), each controller under its own
   * service account (tokens from the TokenRequest API), the service-account key of the API server
   * (--service-account-private-key-file is the key the API server verifies with), and the CA to
   * sign CSRs. No leader election: there is one.
   */
  private async startControllerManager(server: string, pki: Pki): Promise<void> {
    if (!this.started) throw new Error('start() the control plane first');
    const { binaries, timeout } = this.started;
    requireBinary(binaries.kubeControllerManager);
    const kubeconfig = this.controllerManagerKubeconfigPath;
    this.writeKubeconfig(server, pki, kubeconfig, {
      name: 'system:kube-controller-manager',
      cert: pki.controllerManagerCert,
      key: pki.controllerManagerKey,
    });
    const port = await freePort();
    const log = this.options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.controllerManager = new Restarting({
      name: 'kube-controller-manager',
      command: binaries.kubeControllerManager,
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        '--use-service-account-credentials=true',
        `--cluster-signing-cert-file=${pki.caCert}`,
        `--cluster-signing-key-file=${pki.caKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--leader-elect=false',
        '--v=1',
      ],
      logFile: join(this.dirs.logs, 'kube-controller-manager.log'),
      // /healthz is open to anyone (--authorization-always-allow-paths); served with the API server's cert.
      ready: async () => (await httpsGet(`https://127.0.0.1:${port}/healthz`, pki)).status === 200,
      readyTimeoutMs: timeout,
      log,
      stopGraceMs: 10_000,
      ...(this.options.stopSignal ? { stopSignal: this.options.stopSignal } : {}),
    });
    await this.controllerManager.start();
  }

  /** Kills the API server at once (SIGKILL), as a crash would; etcd keeps running. */
  async killApiServer(): Promise<void> {
    if (!this.apiserver) return;
    this.apiserver.child.kill('SIGKILL');
    await this.apiserver.exited;
  }

  /** Starts the API server again on its port after killApiServer(). */
  async restartApiServer(): Promise<void> {
    const port = Number(new URL(this.server).port);
    this.apiserver = await this.launchApiServer(port, 'kube-apiserver');
  }

  /**
   * A second API server on the same etcd, as in an HA control plane: writes
   * through it while the first is down are what a resuming watch must catch up on.
   */
  async startSecondApiServer(): Promise<{ server: string; kubeconfig: string; stop: () => Promise<void> }> {
    if (!this.started) throw new Error('start() the control plane first');
    const port = await freePort();
    const second = await this.launchApiServer(port, 'kube-apiserver-2');
    const server = `https://127.0.0.1:${port}`;
    const kubeconfig = join(this.options.stateDir, 'kubeconfig-2');
    this.writeKubeconfig(server, this.started.pki, kubeconfig);
    return { server, kubeconfig, stop: () => second.stop(15_000) };
  }

  get server(): string {
    const ports = JSON.parse(readFileSync(join(this.options.stateDir, 'ports.json'), 'utf8')) as Ports;
    return `https://127.0.0.1:${ports.apiserver}`;
  }

  private writeKubeconfig(
    server: string,
    pki: Pki,
    path: string = this.kubeconfigPath,
    user: { name: string; cert: string; key: string } = {
      name: 'virtfleet-admin',
      cert: pki.adminCert,
      key: pki.adminKey,
    },
  ): void {
    const b64 = (file: string) => readFileSync(file).toString('base64');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'virtfleet-local', cluster: { server, 'certificate-authority-data': b64(pki.caCert) } }],
      users: [
        { name: user.name, user: { 'client-certificate-data': b64(user.cert), 'client-key-data': b64(user.key) } },
      ],
      contexts: [{ name: 'virtfleet-local', context: { cluster: 'virtfleet-local', user: user.name } }],
      'current-context': 'virtfleet-local',
    };
    writeFileSync(path, stringify(config), { mode: 0o600 });
  }

  /** Stops kube-controller-manager, then the API server, then etcd, so etcd never loses a writer mid-request. */
  async stop(): Promise<void> {
    await this.controllerManager?.stop();
    await this.apiserver?.stop(15_000);
    await this.etcd?.stop(10_000);
  }

  /** Resolves with an error when etcd or the API server exits, which only stop() should cause. */
  firstExit(): Promise<Error> {
    const parts = [this.etcd, this.apiserver].filter((part): part is Supervised => part !== undefined);
    return Promise.race(parts.map((part) => part.exited.then((code) => part.failure(`exited (code ${String(code)})`))));
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    this.controllerManager?.killNow();
    for (const part of [this.apiserver, this.etcd]) if (part?.running) part.child.kill('SIGKILL');
  }
}
