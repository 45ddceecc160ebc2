// Installs the project's CRDs with the real kubectl and waits until the API
// server serves them (Established), so callers can create resources at once.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function kubectlOrThrow(kubectl: string, kubeconfig: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(kubectl, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`kubectl ${args.join(' ')} failed: ${stderr || String(error)}`, { cause: error });
  }
}

export async function installCrds(kubectl: string, kubeconfig: string, root: string): Promise<void> {
  const dir = join(root, 'crds');
  // Each file is named after its CRD (<plural>.<group>.yaml); kustomization.yaml is not a CRD.
  const names = readdirSync(dir)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .map((file) => `crd/${file.slice(0, -'.yaml'.length)}`);
  await kubectlOrThrow(kubectl, kubeconfig, ['apply', '--server-side', '--force-conflicts', '-k', dir]);
  await kubectlOrThrow(kubectl, kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', ...names]);
}
