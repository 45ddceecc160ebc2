// Loaded by global-setup.mjs and global-teardown.mjs through tsx, since
// jest's global setup runs outside its own module resolution.
// Starts a real etcd + kube-apiserver for the integration tier, installs the
// CRDs, and hands tests a kubeconfig through the environment. If a part
// cannot start, this throws with that part's log: the tier fails, never skips.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';

declare global {
  var __virtfleetControlPlane: { plane: ControlPlane; stateDir: string } | undefined;
}

export async function startControlPlane(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-it-'));
  const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
  globalThis.__virtfleetControlPlane = { plane, stateDir };
  // Even if jest dies without running the teardown, nothing is left running.
  process.once('exit', () => plane.killNow());
  const started = Date.now();
  const info = await plane.start().catch(async (error: unknown) => {
    await plane.stop();
    throw error;
  });
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  process.env.KUBECONFIG = info.kubeconfig;
  process.env.VIRTFLEET_KUBECTL = info.binaries.kubectl;
  process.stdout.write(
    `\ncontrol plane: kube-apiserver ${info.binaries.kubernetesVersion} + etcd ${info.binaries.etcdVersion} at ${info.server} ` +
      `(up in ${((Date.now() - started) / 1000).toFixed(1)} s, state in ${stateDir})\n`,
  );
}

/** Stops the control plane that startControlPlane started, failed tests or not. */
export async function stopControlPlane(): Promise<void> {
  const started = globalThis.__virtfleetControlPlane;
  if (!started) return;
  await started.plane.stop();
  if (!process.env.VIRTFLEET_KEEP_STATE) rmSync(started.stateDir, { recursive: true, force: true });
  globalThis.__virtfleetControlPlane = undefined;
}
