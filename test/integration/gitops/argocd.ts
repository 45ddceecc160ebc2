// The Argo CD health checks of deploy/argocd/resource_customizations, run by hack/argocd-health
// (gopher-lua, set up as Argo CD sets it up), and their testdata: objects captured from the real
// API server in each state by argocd-health.test.ts (VIRTFLEET_CAPTURE_ARGOCD=1 rewrites them).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { argocdHealthBinary } from '../../../src/devstack/binaries.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CUSTOMIZATIONS = join(ROOT, 'deploy/argocd/resource_customizations');
export const KINDS = [
  'VirtualMachine',
  'HostPool',
  'InstallProfile',
  'VirtualMachineSnapshot',
  'VirtualMachineRestore',
  'VirtualMachineImage',
  'VirtualMachineSnapshotSchedule',
  'VirtualMachineTemplate',
] as const;
export type Kind = (typeof KINDS)[number];

export interface Health {
  status: 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended' | 'Missing' | 'Unknown';
  message: string;
}

export interface HealthTests {
  tests: { healthStatus: Health; inputPath: string }[];
}

export function kindDir(kind: Kind): string {
  return join(CUSTOMIZATIONS, 'virtfleet.io', kind);
}

export function runner(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(argocdHealthBinary(ROOT), args, { input, encoding: 'utf8', cwd: ROOT });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The health Argo CD would show for `object`. */
export function health(kind: Kind, object: unknown): Health {
  const run = runner(['eval', join(kindDir(kind), 'health.lua')], JSON.stringify(object));
  if (run.status !== 0) throw new Error(`argocd-health eval ${kind}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Health;
}

export function healthTests(kind: Kind): HealthTests {
  return parse(readFileSync(join(kindDir(kind), 'health_test.yaml'), 'utf8')) as HealthTests;
}

/** Replaces each of `from` by `to` in every string of a JSON value. */
function replaceAll(value: unknown, names: [from: string, to: string][]): unknown {
  if (typeof value === 'string') return names.reduce((text, [from, to]) => text.split(from).join(to), value);
  if (Array.isArray(value)) return value.map((item) => replaceAll(item, names));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceAll(item, names)]));
  return value;
}

/**
 * The object as testdata keeps it: what the API server returned, less what says nothing about
 * health and changes every run (managedFields, uid, resourceVersion), with the test's random
 * names (namespace, run id, host file paths) replaced by stable ones.
 */
export function forTestdata(object: Record<string, unknown>, names: [from: string, to: string][]): unknown {
  const metadata = { ...(object.metadata as Record<string, unknown>) };
  for (const key of ['managedFields', 'uid', 'resourceVersion']) delete metadata[key];
  return replaceAll({ ...object, metadata }, names);
}

/** Writes the captured objects and the health_test.yaml that says what each must read as. */
export function writeTestdata(
  kind: Kind,
  captured: Map<string, { object: unknown; health: Health }>,
  madeBy = 'argocd-health.test.ts',
): void {
  const dir = kindDir(kind);
  const tests: HealthTests = { tests: [] };
  for (const [file, { object, health: expected }] of [...captured].sort(([a], [b]) => a.localeCompare(b))) {
    writeFileSync(join(dir, 'testdata', file), stringify(object, { lineWidth: 0 }));
    tests.tests.push({ healthStatus: expected, inputPath: `testdata/${file}` });
  }
  const header =
    `# Made by test/integration/gitops/${madeBy} (VIRTFLEET_CAPTURE_ARGOCD=1) from objects\n` +
    '# the real API server returned in each state; run with hack/argocd-health test deploy/argocd/resource_customizations.\n';
  writeFileSync(join(dir, 'health_test.yaml'), header + stringify(tests, { lineWidth: 0 }));
}
