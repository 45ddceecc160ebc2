// The local stack behind `make run`: a real control plane whose data lives in
// a state directory (kept across runs), the CRDs, the example manifests (with
// the simulated hosts of HostPool lab, and, as root with QEMU, two real libvirtd
// hosts as HostPool local with the VM demo), and the controller process with its install endpoint. The
// control plane includes kube-controller-manager, so namespaces finish deleting
// and ownerReferences are collected; the examples are applied server-side under
// their own field manager; the controller is restarted with backoff when it
// exits, as a Deployment would restart it; so is `virtfleet api`, registered
// with the aggregator for `virtfleet vm console`. Ctrl-C stops every child;
// nothing is left running.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { join, relative, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { repoRoot } from './binaries.js';
import { startLocalApiServer } from './api-server.js';
import { webUserTokens } from './web-users.js';
import { ControlPlane } from './controlplane.js';
import { installCrds, kubectlOrThrow } from './crds.js';
import { processesUsing } from './leftovers.js';
import { freePort, portOr } from './ports.js';
import { Restarting } from './process.js';
import { KubeClient } from '../runtime/kube-client.js';
import { startRealHosts, unavailableReason, type RealHosts } from './real-hosts.js';

export interface DevStackOptions {
  stateDir: string;
  /** Command that starts the controller, e.g. [node, main.js, 'controller']. */
  controllerCommand: string[];
  /** Command that starts `virtfleet api`; default: controllerCommand with its last word 'api'. */
  apiCommand?: string[];
  applyExamples: boolean;
  /**
   * Whether to start two real libvirtd hosts as HostPool local (real-hosts.ts) and apply the VM
   * demo (manifests/optional/vm-demo.yaml) with the examples: 'auto' (the default) when this
   * machine can (root, QEMU, libvirtd); true fails the stack when they cannot start. Default from
   * $VIRTFLEET_LOCAL_LIBVIRT (auto, 1 or 0).
   */
  localLibvirt?: 'auto' | boolean;
  out?: (line: string) => void;
}

/**
 * Where HostPool lab (manifests/hostpool-lab.yaml) finds its simulated hosts: its URIs are
 * test:///var/lib/virtfleet/lab/hosts/<host>.xml, libvirt test-driver definition files that
 * make run copies here from manifests/lab/hosts/. A URI names an absolute path, so this one is
 * fixed: the same manifest works from any checkout.
 */
export const LAB_HOSTS_DIR = '/var/lib/virtfleet/lab/hosts';

/** The field manager `make run` applies the examples with (server-side apply). */
export const EXAMPLES_FIELD_MANAGER = 'virtfleet-examples';
/** The web console's port on `make run` when free (a bookmark keeps working across runs). */
export const WEB_PORT = 8444;
const USER_ROLES = 'deploy/base/user-roles.yaml';

/**
 * Server-side apply of the examples under their own field manager: re-applied on every start
 * without drift (no last-applied-configuration), and a user's `kubectl apply --server-side` of
 * the same files shares the fields instead of conflicting. --force-conflicts: a start puts the
 * examples back as the files say, taking back fields changed since (as client-side apply did).
 */
export function applyExamplesArgs(path: string): string[] {
  return ['apply', '--server-side', `--field-manager=${EXAMPLES_FIELD_MANAGER}`, '--force-conflicts', '-f', path];
}

export interface InstalledHosts {
  dir: string;
  written: string[];
  unchanged: string[];
}

/**
 * Copies the host definition files (*.xml) of `source` into `target`, writing only those whose
 * content differs (through a temporary file and a rename, so a reader never sees half a file).
 * A target that cannot be written is an error naming the directory and the fix.
 */
export function installLabHosts(source: string, target: string = LAB_HOSTS_DIR): InstalledHosts {
  const files = readdirSync(source)
    .filter((file) => file.endsWith('.xml'))
    .sort();
  const result: InstalledHosts = { dir: target, written: [], unchanged: [] };
  let temp: string | undefined;
  try {
    mkdirSync(target, { recursive: true, mode: 0o755 });
    for (const file of files) {
      const wanted = readFileSync(join(source, file));
      const path = join(target, file);
      if (existsSync(path) && readFileSync(path).equals(wanted)) {
        result.unchanged.push(file);
        continue;
      }
      temp = join(target, `.${file}.${process.pid}.tmp`);
      writeFileSync(temp, wanted, { mode: 0o644 });
      renameSync(temp, path);
      temp = undefined;
      result.written.push(file);
    }
  } catch (error) {
    if (temp) rmSync(temp, { force: true });
    throw new Error(
      `cannot install the simulated hosts of HostPool lab in ${target}: ${(error as Error).message}\n` +
        `  manifests/hostpool-lab.yaml names them by that absolute path (test://${target}/<host>.xml).\n` +
        `  Fix: make the directory yours once, then run make run again:\n` +
        `    sudo install -d -o ${userInfo().username} ${target}`,
      { cause: error },
    );
  }
  return result;
}

/** Whether to start the real hosts of HostPool local, and why (auto: when this machine can run them). */
export function realHostsSetting(setting: 'auto' | boolean = localLibvirtFromEnv()): {
  use: boolean;
  required: boolean;
  why: string;
} {
  if (setting === true) return { use: true, required: true, why: 'VIRTFLEET_LOCAL_LIBVIRT=1' };
  if (setting === false) return { use: false, required: false, why: 'VIRTFLEET_LOCAL_LIBVIRT=0' };
  const cannot = unavailableReason();
  return cannot
    ? { use: false, required: false, why: `no real hosts here: ${cannot}` }
    : { use: true, required: false, why: 'root, QEMU and libvirtd are here' };
}

function localLibvirtFromEnv(): 'auto' | boolean {
  const value = (process.env.VIRTFLEET_LOCAL_LIBVIRT ?? '').trim().toLowerCase();
  if (value === '' || value === 'auto') return 'auto';
  if (['1', 'yes', 'true'].includes(value)) return true;
  if (['0', 'no', 'false'].includes(value)) return false;
  throw new Error(
    `VIRTFLEET_LOCAL_LIBVIRT=${value}: use auto (start the real hosts of HostPool local when this machine can), 1 (always) or 0 (never)`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Refuses a second stack on the same directory; clears what a killed one left. */
async function claimStateDir(stateDir: string, out: (line: string) => void): Promise<void> {
  const pidFile = join(stateDir, 'stack.pid');
  if (existsSync(pidFile)) {
    const previous = Number(readFileSync(pidFile, 'utf8'));
    if (
      previous !== process.pid &&
      isAlive(previous) &&
      readFileSync(`/proc/${previous}/cmdline`, 'utf8').includes(stateDir)
    ) {
      throw new Error(`another local stack (pid ${previous}) is using ${stateDir}; stop it with Ctrl-C first`);
    }
  }
  const leftovers = processesUsing(stateDir);
  for (const leftover of leftovers) {
    out(`stopping a leftover process of an earlier run: ${leftover.pid} ${leftover.command.slice(0, 80)}`);
    process.kill(leftover.pid, 'SIGKILL');
  }
  while (processesUsing(stateDir).length > 0) await delay(50);
  writeFileSync(pidFile, String(process.pid));
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

export async function runDevStack(options: DevStackOptions, signal: AbortSignal): Promise<void> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stateDir = resolve(options.stateDir);
  const root = repoRoot();
  mkdirSync(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
  await claimStateDir(stateDir, out);
  const manifests = join(root, 'manifests');
  const demoFile = join(manifests, 'optional', 'vm-demo.yaml');
  // Before anything starts: a lab that cannot be installed fails the stack at once.
  let local: { use: boolean; required: boolean; why: string } | undefined;
  if (options.applyExamples) {
    local = realHostsSetting(options.localLibvirt);
    const hosts = installLabHosts(join(manifests, 'lab', 'hosts'));
    const all = [...hosts.written, ...hosts.unchanged].sort();
    out(
      `simulated hosts of HostPool lab in ${hosts.dir}: ${all.join(', ')} ` +
        `(${hosts.written.length > 0 ? `${hosts.written.join(', ')} written` : 'all up to date'})`,
    );
  }

  const plane = new ControlPlane({
    stateDir,
    stablePorts: true,
    controllerManager: true,
    log: out,
    stopSignal: signal,
  });
  let controller: Restarting | undefined;
  let api: Restarting | undefined;
  let realHosts: RealHosts | undefined;
  const stopAll = async () => {
    await api?.stop();
    await controller?.stop();
    await realHosts?.stop();
    await plane.stop();
  };
  process.once('exit', () => {
    api?.killNow();
    controller?.killNow();
    plane.killNow();
  });

  try {
    out(`starting etcd, kube-apiserver and kube-controller-manager (state in ${stateDir})...`);
    const info = await plane.start();
    out(`installing CRDs from ${join(root, 'crds')}...`);
    await installCrds(info.binaries.kubectl, info.kubeconfig, root);
    if (options.applyExamples && local) {
      out(`applying the example manifests in ${manifests}...`);
      await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, applyExamplesArgs(manifests));
      if (local.use) {
        out(`${local.why}: starting two real libvirtd hosts as HostPool local...`);
        try {
          realHosts = await startRealHosts(stateDir, out);
        } catch (error) {
          if (local.required) throw error;
          out(`real hosts did not start (${firstLine(error)}); going on with the simulated HostPool lab`);
        }
      } else {
        out(`${local.why}: HostPool local not applied; the examples use the simulated HostPool lab`);
      }
      if (realHosts) {
        out(`applying HostPool local and the VM demo (${relative(root, demoFile)})`);
        await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, applyExamplesArgs(realHosts.poolFile));
        await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, applyExamplesArgs(demoFile));
      }
    }

    out('starting the controller...');
    const healthPort = await freePort();
    const metricsPort = await freePort();
    // The install endpoint serves installing VMs their Kickstart. On loopback: the lab's
    // simulated hosts boot nothing, and a real host's guests would need --install-url-base.
    const installPort = await freePort();
    const [command, ...args] = options.controllerCommand;
    controller = new Restarting({
      name: 'controller',
      command: command ?? process.execPath,
      args: [
        ...args,
        '--kubeconfig',
        info.kubeconfig,
        '--health-address',
        `127.0.0.1:${healthPort}`,
        '--metrics-address',
        `127.0.0.1:${metricsPort}`,
        '--install-address',
        `127.0.0.1:${installPort}`,
      ],
      logFile: join(stateDir, 'logs', 'controller.log'),
      ready: async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok,
      readyTimeoutMs: 30_000,
      log: out,
      stopSignal: signal,
    });
    await controller.start();

    out('starting virtfleet api (VM consoles, through the aggregator; the web console)...');
    const apiServer = await startLocalApiServer({
      webPort: await portOr(WEB_PORT),
      command: options.apiCommand ?? [...options.controllerCommand.slice(0, -1), 'api'],
      kubeconfig: info.kubeconfig,
      pki: info.pki,
      logsDir: join(stateDir, 'logs'),
      log: out,
      stopSignal: signal,
    });
    api = apiServer.process;
    const adminConfig = new KubeConfig();
    adminConfig.loadFromFile(info.kubeconfig);
    // The roles for people (deploy/base/user-roles.yaml), which the console's two tokens get through
    // Kubernetes' admin and view.
    await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, applyExamplesArgs(join(root, USER_ROLES)));
    const webTokens = await webUserTokens(new KubeClient(adminConfig, 'virtfleet-devstack'), stateDir);

    out('');
    out(
      `virtfleet local stack is up: kube-apiserver and kube-controller-manager ${info.binaries.kubernetesVersion}, ` +
        `etcd ${info.binaries.etcdVersion}, controller (pid ${String(controller.pid)}; restarted if it exits)`,
    );
    out(`  kubeconfig: ${info.kubeconfig}`);
    out(`  try:        kubectl --kubeconfig ${info.kubeconfig} get vm,hp,iprof -A`);
    if (local)
      out(
        `  pools:      lab (simulated: ${LAB_HOSTS_DIR}/*.xml)` +
          (realHosts ? `, local (real: ${realHosts.hosts.map((h) => h.uri).join(' ')})` : ''),
      );
    out(`  kubectl:    ${info.binaries.kubectl} (same version as the API server)`);
    out(`  metrics:    http://127.0.0.1:${metricsPort}/metrics`);
    out(`  install:    http://127.0.0.1:${installPort} (the controller's install endpoint, --install-address)`);
    out(
      `  api:        virtfleet api on https://127.0.0.1:${apiServer.port} (pid ${String(api.pid)}), ` +
        `APIService v1alpha1.subresources.virtfleet.io: virtfleet vm console NAME --kubeconfig ${info.kubeconfig}`,
    );
    out(
      `  web:        https://127.0.0.1:${String(apiServer.webPort)}/ (the web console; its certificate is signed by ` +
        `${info.pki.caCert}, which the browser does not know: accept it once, or import that CA)`,
    );
    for (const web of webTokens)
      out(
        `  ${`web ${web.role}:`.padEnd(12)}${web.token}\n` +
          `              (a token of ${web.user} to log in with, 24 h; also in ${web.file})`,
      );
    out(`  logs:       ${join(stateDir, 'logs')}/`);
    if (realHosts) {
      out('  next:       a real guest boots on HostPool local; with virtfleet = node dist/cli/main.js (or npm link):');
      out(`                export KUBECONFIG=${info.kubeconfig}`);
      out('                kubectl get vm demo -w');
      out('                virtfleet vm console demo');
      out('                virtfleet vm vnc demo   # a local port for a VNC viewer');
      out('                virtfleet vm migrate demo');
    }
    out('Press Ctrl-C to stop.');

    // The controller and kube-controller-manager are restarted when they exit; etcd or
    // kube-apiserver dying fails the stack. Ctrl-C stops it cleanly.
    const reason = await new Promise<string>((resolve, reject) => {
      if (signal.aborted) resolve('stop requested');
      signal.addEventListener('abort', () => resolve('stop requested'), { once: true });
      void plane.firstExit().then(reject);
    });
    out(
      `${reason}: stopping virtfleet api, the controller, ${realHosts ? 'the real hosts, ' : ''}` +
        'kube-controller-manager, kube-apiserver and etcd...',
    );
  } finally {
    await stopAll();
    out('stopped; nothing is left running.');
  }
}
