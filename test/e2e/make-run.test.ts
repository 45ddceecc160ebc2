// Drives `make run` as a user would: it comes up, serves the CRDs, keeps its
// data across a restart, and Ctrl-C leaves no process behind.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { controlPlaneBinaries, repoRoot } from '../../src/devstack/binaries.js';
import { processesUsing } from '../../src/devstack/leftovers.js';

const run = promisify(execFile);
// Each test starts the stack, which may first build what make run needs.
const STACK_TIMEOUT_MS = 300_000;
const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-make-run-'));
const kubectlBin = controlPlaneBinaries().kubectl;

interface RunningStack {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startMakeRun(): RunningStack {
  // Its own process group, as a shell gives a foreground job: Ctrl-C is a
  // SIGINT to that whole group.
  const child = spawn('make', ['run'], {
    cwd: repoRoot(),
    env: { ...process.env, VIRTFLEET_STATE_DIR: stateDir },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** exitCode stays null for a process ended by a signal. */
function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForKubeconfigLine(stack: RunningStack): Promise<string> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const match = /kubeconfig: (\S+)/.exec(stack.output());
    if (match?.[1] && stack.output().includes('Press Ctrl-C to stop.')) return match[1];
    if (hasExited(stack.child)) throw new Error(`make run exited early:\n${stack.output()}`);
    if (Date.now() > deadline) throw new Error(`make run did not come up:\n${stack.output()}`);
    await delay(200);
  }
}

async function ctrlC(stack: RunningStack): Promise<void> {
  process.kill(-stack.child.pid!, 'SIGINT');
  await stack.exited;
}

/** Processes of the stack that are still running, given them time to finish exiting. */
async function leftoversAfterStop(): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  let left = processesUsing(stateDir);
  while (left.length > 0 && Date.now() < deadline) {
    await delay(200);
    left = processesUsing(stateDir);
  }
  return left.map((p) => `${p.pid} ${p.command}`);
}

async function kubectl(kubeconfig: string, args: string[]): Promise<string> {
  const { stdout } = await run(kubectlBin, ['--kubeconfig', kubeconfig, ...args]);
  return stdout;
}

let current: RunningStack | undefined;

afterAll(async () => {
  if (current && !hasExited(current.child)) process.kill(-current.child.pid!, 'SIGKILL');
  for (const leftover of processesUsing(stateDir)) process.kill(leftover.pid, 'SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
});

describe('make run', () => {
  it('comes up, lists the three CRDs, and Ctrl-C leaves nothing running', async () => {
    current = startMakeRun();
    const kubeconfig = await waitForKubeconfigLine(current);
    expect(current.output()).toMatch(/try: +kubectl --kubeconfig \S+ get vm,hp,iprof -A/);

    const crds = await kubectl(kubeconfig, ['get', 'crd', '-o', 'name']);
    expect(crds.split('\n').filter(Boolean).sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/hostpools.virtfleet.io',
      'customresourcedefinition.apiextensions.k8s.io/installprofiles.virtfleet.io',
      'customresourcedefinition.apiextensions.k8s.io/virtualmachines.virtfleet.io',
    ]);
    // The example manifests were applied.
    expect(await kubectl(kubeconfig, ['get', 'hostpools', '-o', 'name'])).toContain('hostpool.virtfleet.io/');
    await kubectl(kubeconfig, ['create', 'configmap', 'kept-across-runs', '--from-literal=answer=42']);

    await ctrlC(current);
    expect(await leftoversAfterStop()).toEqual([]);
  }, STACK_TIMEOUT_MS);

  it('reuses the data of the previous run and stops cleanly again', async () => {
    current = startMakeRun();
    const kubeconfig = await waitForKubeconfigLine(current);
    const kept = await kubectl(kubeconfig, ['get', 'configmap', 'kept-across-runs', '-o', 'jsonpath={.data.answer}']);
    expect(kept).toBe('42');

    await ctrlC(current);
    expect(await leftoversAfterStop()).toEqual([]);
    expect(current.output()).toContain('nothing is left running');
  }, STACK_TIMEOUT_MS);
});
