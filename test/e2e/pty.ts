// A command run in a pseudo-terminal, as a person runs it: util-linux's `script` gives it a pty
// (raw mode, Ctrl keys), this process types into it and reads what it prints.
import { spawn, type ChildProcess } from 'node:child_process';

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

export class PtyProcess {
  output = '';
  readonly exited: Promise<number>;
  private readonly child: ChildProcess;

  constructor(command: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
    // -q quiet, -f flush at once, -e the command's exit status, -c the command; no typescript file.
    // `exec`: script runs the command through $SHELL; dash (CI's /bin/sh) would otherwise stay in
    // the pty's foreground group and die of the Ctrl-C meant for the command (exit 130).
    this.child = spawn('script', ['-qfec', `exec ${command.map(quote).join(' ')}`, '/dev/null'], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => (this.output += chunk.toString('latin1'));
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code ?? -1)));
  }

  type(text: string): void {
    this.child.stdin?.write(text);
  }

  /** Resolves with the first match of `pattern` in the output; rejects after `ms` with the output. */
  async until(pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
    for (const deadline = Date.now() + ms; ;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `${pattern} not seen ${this.child.exitCode !== null ? `(exited ${this.child.exitCode})` : `within ${ms} ms`}; output:\n${this.output.slice(-3000)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
