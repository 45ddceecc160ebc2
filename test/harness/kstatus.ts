// The kstatus checker (hack/kstatus, sigs.k8s.io/cli-utils pkg/kstatus/status): objects in as
// JSON, what Flux and kubectl-based waits compute for each out. Built by hack/setup.sh.
import { spawn } from 'node:child_process';
import { kstatusCheckBinary } from '../../src/devstack/binaries.js';

export interface KstatusResult {
  kind: string;
  namespace?: string;
  name: string;
  /** InProgress, Failed, Current, Terminating, NotFound or Unknown. */
  status: string;
  message: string;
}

/** The kstatus result of each object, in order. */
export async function kstatus(objects: readonly object[]): Promise<KstatusResult[]> {
  const child = spawn(kstatusCheckBinary(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.end(JSON.stringify(objects));
  const code = await exited;
  if (code !== 0) throw new Error(`kstatus-check exited with ${String(code)}: ${stderr.trim()}`);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as KstatusResult);
}

/** The kstatus result of one object. */
export async function kstatusOf(object: object): Promise<KstatusResult> {
  const [result] = await kstatus([object]);
  if (!result) throw new Error('kstatus-check printed nothing');
  return result;
}
