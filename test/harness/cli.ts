// The real `virtfleet` program, run as a user runs it (from the TypeScript sources through tsx),
// for tests of the CLI's exit status and output. Never throws on a non-zero exit.
import { execFile } from 'node:child_process';
import { repoRoot } from '../../src/devstack/binaries.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The whole environment of the process (default: this process's). */
  env?: NodeJS.ProcessEnv;
  maxBuffer?: number;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: repoRoot(), env: options.env ?? process.env, maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        // A failure to run at all (no exit status) is the test's error, not the program's answer.
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}
