// One supervised child process of the local stack: output goes to a log file,
// an early exit is reported with the log's last lines, and stop() escalates
// from SIGTERM to SIGKILL so nothing is left running.
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
