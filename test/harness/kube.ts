// Clients for tests in the integration and e2e tiers: the real kubectl and
// client-node, pointed at the control plane that global-setup started.
import { execFile } from 'node:child_process';
import { KubeConfig } from '@kubernetes/client-node';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: integration tests must run under jest's integration project (test/harness/global-setup.ts)`,
    );
  }
  return value;
}

export function kubeconfigPath(): string {
  return requireEnv('KUBECONFIG');
}

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** Runs the real kubectl against the test control plane; never throws on a non-zero exit. */
export function kubectl(args: string[], options: { input?: string } = {}): Promise<CommandResult> {
  const bin = requireEnv('VIRTFLEET_KUBECTL');
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      ['--kubeconfig', kubeconfigPath(), ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
