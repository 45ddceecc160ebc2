// `kubectl virtfleet …` as a user runs it: the real kubectl finds an executable named
// kubectl-virtfleet on PATH and runs it with the user's kubeconfig (KUBECONFIG), talking to the
// real API server. The executable here starts src/cli/kubectl-virtfleet.ts through tsx, as the
// other CLI tests run the sources; package.json's bin entry installs the built file of that source.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../src/devstack/binaries.js';
import { kubeconfigPath } from '../harness/kube.js';

let pathDir = '';

function kubectlAsUser(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const kubectl = process.env.VIRTFLEET_KUBECTL;
  if (!kubectl) throw new Error('VIRTFLEET_KUBECTL is not set: run under jest’s integration project');
  return new Promise((resolve, reject) => {
    execFile(
      kubectl,
      args,
      {
        env: { ...process.env, PATH: `${pathDir}${delimiter}${process.env.PATH ?? ''}`, KUBECONFIG: kubeconfigPath() },
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(() => {
  pathDir = mkdtempSync(join(tmpdir(), 'virtfleet-plugin-'));
  const plugin = join(pathDir, 'kubectl-virtfleet');
  const entry = join(repoRoot(), 'src/cli/kubectl-virtfleet.ts');
  // Paths as positional parameters: nothing is pasted into the script.
  writeFileSync(plugin, `#!/bin/sh\nexec "$VF_NODE" --import tsx "$VF_ENTRY" "$@"\n`);
  chmodSync(plugin, 0o755);
  process.env.VF_NODE = process.execPath;
  process.env.VF_ENTRY = entry;
});

afterAll(() => {
  rmSync(pathDir, { recursive: true, force: true });
  delete process.env.VF_NODE;
  delete process.env.VF_ENTRY;
});

describe('kubectl virtfleet', () => {
  it('is listed by kubectl plugin list', async () => {
    const listed = await kubectlAsUser(['plugin', 'list']);
    expect(listed.stdout).toContain(join(pathDir, 'kubectl-virtfleet'));
  });

  it('prints the virtfleet help under its kubectl name', async () => {
    const help = await kubectlAsUser(['virtfleet', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kubectl virtfleet \[options\] \[command\]/m);
    for (const command of ['validate', 'vm']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('runs vm commands with the user’s kubeconfig against the API server', async () => {
    const vmHelp = await kubectlAsUser(['virtfleet', 'vm', '--help']);
    expect(vmHelp.code).toBe(0);
    expect(vmHelp.stdout).toMatch(/^Usage: kubectl virtfleet vm/m);
    // The API server's answer, not a local one: the VM does not exist there.
    const start = await kubectlAsUser(['virtfleet', 'vm', 'start', 'no-such-vm', '-n', 'default']);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toMatch(/no-such-vm/);
    expect(start.stderr).toMatch(/not found/i);
  });

  it('is installed by package.json as the built form of that source', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['kubectl-virtfleet']).toBe('dist/cli/kubectl-virtfleet.js');
    expect(readFileSync(join(repoRoot(), 'src/cli/kubectl-virtfleet.ts'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });
});
