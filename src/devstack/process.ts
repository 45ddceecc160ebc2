// One supervised child process of the local stack: output goes to a log file,
// an early exit is reported with the log's last lines, and stop() escalates
// from SIGTERM to SIGKILL so nothing is left running. Restarting keeps one such
// process running as a Deployment would: started again with backoff when it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function tailOf(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class Supervised {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  private exitSignal: NodeJS.Signals | null = null;
  readonly startedAt = Date.now();

  constructor(readonly spec: ProcessSpec) {
    const fd = openSync(spec.logFile, 'a');
    try {
      this.child = spawn(spec.command, spec.args, {
        stdio: ['ignore', fd, fd],
        env: spec.env ?? process.env,
        cwd: spec.cwd,
      });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        this.exitSignal = signal;
        resolve(this.exitCode);
      });
      this.child.once('error', () => {
        this.exitCode = -1;
        resolve(-1);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** How it ended: "code 1" or "signal SIGKILL". */
  get exitDescription(): string {
    return this.exitSignal ? `signal ${this.exitSignal}` : `code ${String(this.exitCode)}`;
  }

  /** Why the process is not usable, with the end of its log. */
  failure(what: string): Error {
    return new Error(`${this.spec.name} ${what}; last lines of ${this.spec.logFile}:\n${tailOf(this.spec.logFile)}`);
  }

  /**
   * Polls `ready` until it resolves true. Fails at once when the process exits,
   * and after `timeoutMs` with the log tail: a part that cannot start says why.
   */
  async waitUntilReady(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw this.failure(`exited with code ${String(this.exitCode)} before it was ready`);
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) throw this.failure(`was not ready after ${timeoutMs / 1000} s`);
      await delay(100);
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface RestartingSpec extends ProcessSpec {
  /** Polled after every start until true: the process is up. */
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
  /** Where restarts are reported, one line each. */
  log: (line: string) => void;
  /** First delay before a restart, doubled on every exit up to maxMs; reset after a run of resetAfterMs. */
  backoff?: { initialMs: number; maxMs: number; resetAfterMs: number };
  /** Grace before SIGKILL when stopped. */
  stopGraceMs?: number;
  /**
   * Aborted when the whole stack is being stopped: an exit after it is no crash. (Ctrl-C in a
   * terminal signals the child too, maybe before stop() is called.)
   */
  stopSignal?: AbortSignal;
}

const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };

/**
 * A child process kept running as a Deployment keeps its pod running: when it exits on its own it
 * is started again after a backoff (1 s, doubled per exit up to 30 s, back to 1 s after a minute
 * of running), and each exit and restart is reported. The first start must succeed: a part that
 * cannot start at all fails the stack with its log. stop() ends it and any pending restart.
 */
export class Restarting {
  private current: Supervised | undefined;
  private stopping = false;
  private readonly stopped = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  /** How often it was started again. */
  restarts = 0;

  constructor(readonly spec: RestartingSpec) {}

  get pid(): number | undefined {
    return this.current?.pid;
  }

  get running(): boolean {
    return this.current?.running ?? false;
  }

  /** Starts it and waits until it is ready; then keeps it running until stop(). */
  async start(): Promise<void> {
    const first = new Supervised(this.spec);
    this.current = first;
    await first.waitUntilReady(this.spec.ready, this.spec.readyTimeoutMs);
    this.loop = this.keepRunning(first);
  }

  private async keepRunning(first: Supervised): Promise<void> {
    const backoff = this.spec.backoff ?? DEFAULT_BACKOFF;
    const { name, logFile } = this.spec;
    let delayMs = backoff.initialMs;
    let child = first;
    for (;;) {
      await child.exited;
      if (this.stopping || this.spec.stopSignal?.aborted) return;
      const ranMs = Date.now() - child.startedAt;
      if (ranMs >= backoff.resetAfterMs) delayMs = backoff.initialMs;
      this.restarts += 1;
      this.spec.log(
        `${name} exited unexpectedly (${child.exitDescription}) after ${(ranMs / 1000).toFixed(1)} s; ` +
          `restarting it in ${(delayMs / 1000).toFixed(0)} s (restart ${this.restarts}; its log: ${logFile})`,
      );
      try {
        await delay(delayMs, undefined, { signal: this.stopped.signal });
      } catch {
        return; // stop() during the backoff
      }
      if (this.stopping) return;
      delayMs = Math.min(delayMs * 2, backoff.maxMs);
      child = new Supervised(this.spec);
      this.current = child;
      try {
        await child.waitUntilReady(this.spec.ready, this.spec.readyTimeoutMs);
        if (this.stopping) return;
        this.spec.log(`${name} restarted (pid ${String(child.pid)}) and ready`);
      } catch (error) {
        if (this.stopping) return;
        this.spec.log(`${name} did not come back: ${(error as Error).message.split('\n')[0] ?? ''}`);
        if (child.running) await child.stop(this.spec.stopGraceMs);
      }
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after the grace) and cancels any pending restart. */
  async stop(graceMs = this.spec.stopGraceMs ?? 10_000): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.current?.stop(graceMs);
    await this.loop;
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    if (this.current?.running) this.current.child.kill('SIGKILL');
  }
}
