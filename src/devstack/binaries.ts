// Where the control-plane binaries built by hack/build-controlplane.sh live.
// The versions come from the go.mod files that pin them, so the shell build
// and this lookup can never disagree.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  /** Checked only by a control plane that runs it (ControlPlaneOptions.controllerManager). */
  kubeControllerManager: string;
  kubectl: string;
  kubernetesVersion: string;
  etcdVersion: string;
}

/** The repository root: the nearest directory above this module with a package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('cannot find the virtfleet repository root (no package.json above this module)');
    dir = parent;
  }
  return dir;
}

export function cacheDir(): string {
  return process.env.VIRTFLEET_CACHE ? resolve(process.env.VIRTFLEET_CACHE) : join(homedir(), '.cache', 'virtfleet');
}

function pinnedVersion(goMod: string, modulePath: string): string {
  const text = readFileSync(goMod, 'utf8');
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(text);
  if (!match?.[1]) throw new Error(`${goMod} does not pin ${modulePath}`);
  return match[1];
}

/** Paths of the built binaries; throws an error that says how to build them when one is missing. */
export function controlPlaneBinaries(root: string = repoRoot()): ControlPlaneBinaries {
  const kubernetesVersion = pinnedVersion(join(root, 'hack/controlplane/kubernetes/go.mod'), 'k8s.io/kubernetes');
  const etcdVersion = pinnedVersion(join(root, 'hack/controlplane/etcd/go.mod'), 'go.etcd.io/etcd/server/v3');
  const bin = join(cacheDir(), 'bin');
  const binaries = {
    etcd: join(bin, `etcd-${etcdVersion}`),
    kubeApiserver: join(bin, `kube-apiserver-${kubernetesVersion}`),
    kubeControllerManager: join(bin, `kube-controller-manager-${kubernetesVersion}`),
    kubectl: join(bin, `kubectl-${kubernetesVersion}`),
    kubernetesVersion,
    etcdVersion,
  };
  for (const path of [binaries.etcd, binaries.kubeApiserver, binaries.kubectl]) requireBinary(path);
  return binaries;
}

/** Throws an error that says how to build `path` when it is missing. */
export function requireBinary(path: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `control-plane binary ${path} is missing: run hack/setup.sh (make test and make run do it for you)`,
    );
  }
}

/** The sha256 prefix of a Go tool's go.mod, go.sum and .go files by name (hack/build-controlplane.sh's source_hash). */
function sourceHash(dir: string): string {
  const files = readdirSync(dir)
    .filter((name) => name === 'go.mod' || name === 'go.sum' || name.endsWith('.go'))
    .sort();
  const hash = createHash('sha256');
  for (const name of files) hash.update(readFileSync(join(dir, name)));
  return hash.digest('hex').slice(0, 16);
}

/** hack/argocd-health (Argo CD health checks in gopher-lua), cached by the hash of its sources. */
export function argocdHealthBinary(root: string = repoRoot()): string {
  const path = join(cacheDir(), 'bin', `argocd-health-${sourceHash(join(root, 'hack/argocd-health'))}`);
  requireBinary(path);
  return path;
}

/** helm, built from the Go module hack/helm/go.mod pins, cached by version. */
export function helmBinary(root: string = repoRoot()): string {
  const path = join(cacheDir(), 'bin', `helm-${pinnedVersion(join(root, 'hack/helm/go.mod'), 'helm.sh/helm/v4')}`);
  requireBinary(path);
  return path;
}

/** hack/kstatus (the kstatus checker: sigs.k8s.io/cli-utils pkg/kstatus), cached by the hash of its sources. */
export function kstatusCheckBinary(root: string = repoRoot()): string {
  const path = join(cacheDir(), 'bin', `kstatus-check-${sourceHash(join(root, 'hack/kstatus'))}`);
  requireBinary(path);
  return path;
}
