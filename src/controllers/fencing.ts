// Fencing a failed host: the HostPool's spec.hosts[].fencing.command, run by the controller to
// power the host off, so that its VMs can be started elsewhere without ever running twice. The
// command gets argv as written (no shell), a small environment (PATH, VIRTFLEET_HOST,
// VIRTFLEET_HOST_URI, VIRTFLEET_POOL, and the keys of fencing.secretRef's Secret), and exit 0
// means "the host is off". Its output goes to status and Events only with every Secret value
// masked, and at most its last 1 KiB.
import { spawn } from 'node:child_process';

export interface FencingCommand {
  argv: string[];
  env: Record<string, string>;
  /** Values never to show (Secret values), masked in the output kept. */
  secrets: string[];
  timeoutMs: number;
}

export interface FencingOutcome {
  ok: boolean;
  /** What happened, for status and Events: exit code or signal, and the output's tail, masked. */
  message: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OUTPUT_TAIL = 1024;

/** The environment of a fencing command; Secret keys that are not environment names are left out (and said). */
export function fencingEnv(
  base: { pool: string; host: string; uri: string; path: string | undefined },
  secretData: Record<string, string> | undefined,
): { env: Record<string, string>; secrets: string[]; skipped: string[] } {
  const env: Record<string, string> = {
    PATH: base.path ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C',
    VIRTFLEET_POOL: base.pool,
    VIRTFLEET_HOST: base.host,
    VIRTFLEET_HOST_URI: base.uri,
  };
  const secrets: string[] = [];
  const skipped: string[] = [];
  for (const [key, encoded] of Object.entries(secretData ?? {})) {
    if (!ENV_NAME.test(key) || key in env) {
      skipped.push(key);
      continue;
    }
    const value = Buffer.from(encoded, 'base64').toString('utf8');
    env[key] = value;
    if (value.length > 0) secrets.push(value);
  }
  return { env, secrets, skipped };
}

/** Replaces every secret value in `text` with ***. Longest first, so a value inside another is masked whole. */
export function maskSecrets(text: string, secrets: string[]): string {
  let masked = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) masked = masked.split(secret).join('***');
  return masked;
}

/** Runs the command; never rejects. */
export function runFencingCommand(command: FencingCommand, signal?: AbortSignal): Promise<FencingOutcome> {
  return new Promise((resolve) => {
    const [program, ...args] = command.argv;
    if (!program) {
      resolve({ ok: false, message: 'spec.hosts[].fencing.command is empty' });
      return;
    }
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4 * OUTPUT_TAIL);
    };
    const child = spawn(program, args, { env: command.env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, command.timeoutMs);
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (ok: boolean, what: string) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const tail = maskSecrets(output, command.secrets).trim().slice(-OUTPUT_TAIL);
      resolve({ ok, message: tail ? `${what}: ${tail}` : what });
    };
    child.on('error', (error) => finish(false, `cannot run ${program}: ${error.message}`));
    child.on('close', (code, sig) => {
      if (timedOut) finish(false, `${program} did not finish within ${command.timeoutMs / 1000} s and was killed`);
      else if (code === 0) finish(true, `${program} exited 0`);
      else finish(false, sig ? `${program} was killed by ${sig}` : `${program} exited ${code}`);
    });
  });
}

/** Delay before fencing attempt n+1 after n failures: 10 s, doubling, at most 5 min. */
export function fencingRetryMs(failures: number): number {
  return Math.min(10_000 * 2 ** Math.max(0, failures - 1), 300_000);
}
