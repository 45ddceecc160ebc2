// The local stack behind `make run`: a real control plane whose data lives in
// a state directory (kept across runs), the CRDs, the example manifests (with
// the simulated hosts of HostPool lab, and HostPool local when this machine
// runs libvirtd), and the controller process with its install endpoint. The
// control plane includes kube-controller-manager, so namespaces finish deleting
// and ownerReferences are collected; the examples are applied server-side under
// their own field manager; the controller is restarted with backoff when it
// exits, as a Deployment would restart it. Ctrl-C stops every child; nothing
// is left running.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { repoRoot } from './binaries.js';
import { ControlPlane } from './controlplane.js';
import { installCrds, kubectlOrThrow } from './crds.js';
import { processesUsing } from './leftovers.js';
import { freePort } from './ports.js';
import { Restarting } from './process.js';

export interface DevStackOptions {
  stateDir: string;
  /** Command that starts the controller, e.g. [node, main.js, 'controller']. */
  controllerCommand: string[];
  applyExamples: boolean;
  /**
   * Whether to apply HostPool local (manifests/optional/hostpool-local.yaml) with the examples:
   * 'auto' (the default) when a local libvirtd's socket exists. Default from
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

/** The sockets of a local libvirt daemon: the monolithic libvirtd, or the modular virtqemud. */
/** The field manager `make run` applies the examples with (server-side apply). */
export const EXAMPLES_FIELD_MANAGER = 'virtfleet-examples';

/**
 * Server-side apply of the examples under their own field manager: re-applied on every start
 * without drift (no last-applied-configuration), and a user's `kubectl apply --server-side` of
 * the same files shares the fields instead of conflicting. --force-conflicts: a start puts the
 * examples back as the files say, taking back fields changed since (as client-side apply did).
 */
export function applyExamplesArgs(path: string): string[] {
  return ['apply', '--server-side', `--field-manager=${EXAMPLES_FIELD_MANAGER}`, '--force-conflicts', '-f', path];
}

export const LOCAL_LIBVIRT_SOCKETS = ['/run/libvirt/libvirt-sock', '/run/libvirt/virtqemud-sock'];

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

/** Whether to apply HostPool local, and why. */
export function localLibvirt(
  setting: 'auto' | boolean = localLibvirtFromEnv(),
  sockets: string[] = LOCAL_LIBVIRT_SOCKETS,
): { use: boolean; why: string } {
  if (setting === true) return { use: true, why: 'VIRTFLEET_LOCAL_LIBVIRT=1' };
  if (setting === false) return { use: false, why: 'VIRTFLEET_LOCAL_LIBVIRT=0' };
  const socket = sockets.find((path) => statSync(path, { throwIfNoEntry: false })?.isSocket());
  return socket
    ? { use: true, why: `a local libvirtd listens on ${socket}` }
    : { use: false, why: `no local libvirtd (no ${sockets.join(' or ')})` };
}

function localLibvirtFromEnv(): 'auto' | boolean {
  const value = (process.env.VIRTFLEET_LOCAL_LIBVIRT ?? '').trim().toLowerCase();
  if (value === '' || value === 'auto') return 'auto';
  if (['1', 'yes', 'true'].includes(value)) return true;
  if (['0', 'no', 'false'].includes(value)) return false;
  throw new Error(
    `VIRTFLEET_LOCAL_LIBVIRT=${value}: use auto (apply HostPool local when a local libvirtd runs), 1 (always) or 0 (never)`,
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

export async function runDevStack(options: DevStackOptions, signal: AbortSignal): Promise<void> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stateDir = resolve(options.stateDir);
  const root = repoRoot();
  mkdirSync(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
  await claimStateDir(stateDir, out);
  const manifests = join(root, 'manifests');
  const localPoolFile = join(manifests, 'optional', 'hostpool-local.yaml');
  // Before anything starts: a lab that cannot be installed fails the stack at once.
  let local: { use: boolean; why: string } | undefined;
  if (options.applyExamples) {
    local = localLibvirt(options.localLibvirt);
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
  const stopAll = async () => {
    await controller?.stop();
    await plane.stop();
  };
  process.once('exit', () => {
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
        out(`${local.why}: applying HostPool local (qemu:///system) from ${relative(root, localPoolFile)}`);
        await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, applyExamplesArgs(localPoolFile));
      } else {
        out(`${local.why}: HostPool local not applied; the examples use the simulated HostPool lab`);
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

    out('');
    out(
      `virtfleet local stack is up: kube-apiserver and kube-controller-manager ${info.binaries.kubernetesVersion}, ` +
        `etcd ${info.binaries.etcdVersion}, controller (pid ${String(controller.pid)}; restarted if it exits)`,
    );
    out(`  kubeconfig: ${info.kubeconfig}`);
    out(`  try:        kubectl --kubeconfig ${info.kubeconfig} get vm,hp,iprof -A`);
    if (local)
      out(`  pools:      lab (simulated: ${LAB_HOSTS_DIR}/*.xml)${local.use ? ', local (qemu:///system)' : ''}`);
    out(`  kubectl:    ${info.binaries.kubectl} (same version as the API server)`);
    out(`  metrics:    http://127.0.0.1:${metricsPort}/metrics`);
    out(`  install:    http://127.0.0.1:${installPort} (the controller's install endpoint, --install-address)`);
    out(`  logs:       ${join(stateDir, 'logs')}/`);
    out('Press Ctrl-C to stop.');

    // The controller and kube-controller-manager are restarted when they exit; etcd or
    // kube-apiserver dying fails the stack. Ctrl-C stops it cleanly.
    const reason = await new Promise<string>((resolve, reject) => {
      if (signal.aborted) resolve('stop requested');
      signal.addEventListener('abort', () => resolve('stop requested'), { once: true });
      void plane.firstExit().then(reject);
    });
    out(`${reason}: stopping the controller, kube-controller-manager, kube-apiserver and etcd...`);
  } finally {
    await stopAll();
    out('stopped; nothing is left running.');
  }
}
