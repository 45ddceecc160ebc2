// The local stack behind `make run`: a real control plane whose data lives in
// a state directory (kept across runs), the CRDs, the example manifests, and
// the controller process. Ctrl-C stops every child; nothing is left running.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { repoRoot } from './binaries.js';
import { ControlPlane } from './controlplane.js';
import { installCrds, kubectlOrThrow } from './crds.js';
import { processesUsing } from './leftovers.js';
import { freePort } from './ports.js';
import { Supervised } from './process.js';

export interface DevStackOptions {
  stateDir: string;
  /** Command that starts the controller, e.g. [node, main.js, 'controller']. */
  controllerCommand: string[];
  applyExamples: boolean;
  out?: (line: string) => void;
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
    if (previous !== process.pid && isAlive(previous) && readFileSync(`/proc/${previous}/cmdline`, 'utf8').includes(stateDir)) {
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

  const plane = new ControlPlane({ stateDir, stablePorts: true });
  let controller: Supervised | undefined;
  const stopAll = async () => {
    await controller?.stop();
    await plane.stop();
  };
  process.once('exit', () => {
    if (controller?.running) controller.child.kill('SIGKILL');
    plane.killNow();
  });

  try {
    out(`starting etcd and kube-apiserver (state in ${stateDir})...`);
    const info = await plane.start();
    out(`installing CRDs from ${join(root, 'crds')}...`);
    await installCrds(info.binaries.kubectl, info.kubeconfig, root);
    if (options.applyExamples) {
      out(`applying the example manifests in ${join(root, 'manifests')}...`);
      await kubectlOrThrow(info.binaries.kubectl, info.kubeconfig, ['apply', '-f', join(root, 'manifests')]);
    }

    out('starting the controller...');
    const healthPort = await freePort();
    const metricsPort = await freePort();
    const [command, ...args] = options.controllerCommand;
    controller = new Supervised({
      name: 'controller',
      command: command ?? process.execPath,
      args: [...args, '--kubeconfig', info.kubeconfig, '--health-address', `127.0.0.1:${healthPort}`, '--metrics-address', `127.0.0.1:${metricsPort}`],
      logFile: join(stateDir, 'logs', 'controller.log'),
    });
    await controller.waitUntilReady(async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok, 30_000);

    out('');
    out(`virtfleet local stack is up: kube-apiserver ${info.binaries.kubernetesVersion}, etcd ${info.binaries.etcdVersion}, controller`);
    out(`  kubeconfig: ${info.kubeconfig}`);
    out(`  try:        kubectl --kubeconfig ${info.kubeconfig} get vm,hp,iprof -A`);
    out(`  kubectl:    ${info.binaries.kubectl} (same version as the API server)`);
    out(`  metrics:    http://127.0.0.1:${metricsPort}/metrics`);
    out(`  logs:       ${join(stateDir, 'logs')}/`);
    out('Press Ctrl-C to stop.');

    // A part that dies on its own fails the stack; Ctrl-C stops it cleanly.
    const running = controller;
    const reason = await new Promise<string>((resolve, reject) => {
      if (signal.aborted) resolve('stop requested');
      signal.addEventListener('abort', () => resolve('stop requested'), { once: true });
      void running.exited.then((code) => reject(running.failure(`exited on its own (code ${String(code)})`)));
      void plane.firstExit().then(reject);
    });
    out(`${reason}: stopping the controller, kube-apiserver and etcd...`);
  } finally {
    await stopAll();
    out('stopped; nothing is left running.');
  }
}
