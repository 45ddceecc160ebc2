// What the benches that run a control plane and a controller process share: their arguments,
// the clean-up of everything they start (also on failure and on Ctrl-C), waiting on their watch,
// the controller child process's start and stop, and nearest-rank percentiles.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ControlPlane, type ControlPlaneInfo } from '../src/devstack/controlplane.js';
import { installCrds } from '../src/devstack/crds.js';
import type { Cache } from '../src/runtime/cache.js';

/** `--name N` from the command line, or `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

// ---- cleanup, whatever happens --------------------------------------------------------------

export type CleanupStep = () => Promise<void> | void;

export interface Cleanups {
  /** Steps to run on the way out, the last one pushed first. */
  steps: CleanupStep[];
  /** Runs the steps (once, however often called; a failing step is reported and the rest still run), then removes the temp dir or, with `keep`, says where it is. */
  cleanup: () => Promise<void>;
}

/**
 * The clean-up of a bench whose temp dir is `dir`, also run on SIGINT / SIGTERM (exit code 130).
 * `beforeDir` runs after the steps, before the temp dir is removed or kept.
 */
export function cleanupOnExit(dir: string, keep: boolean, beforeDir?: () => void): Cleanups {
  const steps: CleanupStep[] = [];
  let cleaning: Promise<void> | undefined;
  function cleanup(): Promise<void> {
    cleaning ??= (async () => {
      for (const step of steps.reverse()) {
        try {
          await step();
        } catch (error) {
          process.stderr.write(`cleanup: ${(error as Error).message}\n`);
        }
      }
      beforeDir?.();
      if (keep) process.stderr.write(`kept ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: cleaning up\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  return { steps, cleanup };
}

// ---- the control plane ------------------------------------------------------------------------

/** Its own etcd + kube-apiserver in `dir`/control-plane (no fsync: a bench's state is thrown away) and the CRDs. */
export async function startControlPlane(dir: string, root: string, steps: CleanupStep[]): Promise<ControlPlaneInfo> {
  const plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
  steps.push(() => plane.stop());
  process.once('exit', () => plane.killNow());
  const info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, root);
  return info;
}

/** Runs the bench's watch until the clean-up; resolves once it has synced. */
export async function watchUntilCleanup(cache: Cache, steps: CleanupStep[]): Promise<void> {
  const stopWatch = new AbortController();
  const watching = cache.run(stopWatch.signal);
  steps.push(async () => {
    stopWatch.abort();
    await watching;
  });
  await cache.waitForSync();
}

// ---- small helpers ---------------------------------------------------------------------------

/** Nearest rank: with 20 values p99 is the largest. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Resolves once `check` holds, looked at after every watch event (`poke`) and every `tickMs`; rejects at the deadline. */
export class Waiter {
  private waiters: Array<() => void> = [];
  constructor(private readonly tickMs: number) {}
  poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async until(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, this.tickMs));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** Runs `work` over `items`, at most `limit` at once. */
export async function pooled<T>(
  items: T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

// ---- the controller process ------------------------------------------------------------------

/** Stops a child process: SIGTERM, and SIGKILL if it has not exited 10 s later. */
export async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Resolves when the controller's health endpoint (port `health`) says ready; rejects if it exits first or after 60 s. */
export async function controllerReady(child: ChildProcess, health: number, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the controller exited (code ${child.exitCode}); see ${log}`);
    try {
      if ((await fetch(`http://127.0.0.1:${health}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the controller did not become ready within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
