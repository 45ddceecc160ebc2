// The Argo CD health checks as shipped: hack/argocd-health runs every health_test.yaml case of
// deploy/argocd/resource_customizations (the objects argocd-health.test.ts captured from the API
// server) as Argo CD's own test does; deploy/argocd/argocd-cm.yaml is what render-argocd-cm.sh
// makes of the health.lua files, and the API server takes it.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { kubectl } from '../../harness/kube.js';
import { CUSTOMIZATIONS, healthTests, kindDir, KINDS, ROOT, runner } from './argocd.js';

const ARGOCD_CM = join(ROOT, 'deploy/argocd/argocd-cm.yaml');

describe('deploy/argocd/resource_customizations', () => {
  it('passes every health_test.yaml case in gopher-lua, set up as Argo CD sets up argocd-cm checks', () => {
    const run = runner(['test', CUSTOMIZATIONS]);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const cases = KINDS.flatMap((kind) =>
      healthTests(kind).tests.map((test) => `virtfleet.io/${kind}/${test.inputPath}`),
    );
    const lines = run.stdout.trim().split('\n');
    expect(lines.map((line) => /^ok {3}(\S+):/.exec(line)?.[1]).sort()).toEqual(cases.sort());
  });

  it('covers Healthy, Progressing and Degraded for every kind, and Suspended for VMs', () => {
    for (const kind of KINDS) {
      const statuses = new Set(healthTests(kind).tests.map((test) => test.healthStatus.status));
      const expected =
        kind === 'VirtualMachine'
          ? ['Degraded', 'Healthy', 'Progressing', 'Suspended']
          : ['Degraded', 'Healthy', 'Progressing'];
      expect({ kind, statuses: [...statuses].sort() }).toEqual({ kind, statuses: expected });
    }
  });

  it('fails a case whose expectation differs, and a script that uses a library argocd-cm checks lack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'argocd-health-'));
    try {
      cpSync(CUSTOMIZATIONS, dir, { recursive: true });
      const tests = join(dir, 'virtfleet.io/VirtualMachine/health_test.yaml');
      writeFileSync(tests, readFileSync(tests, 'utf8').replace('status: Suspended', 'status: Healthy'));
      const wrong = runner(['test', dir]);
      expect(wrong.status).toBe(1);
      expect(wrong.stdout).toMatch(
        /^FAIL virtfleet\.io\/VirtualMachine\/testdata\/suspended_paused\.yaml: got Suspended /m,
      );

      const script = join(dir, 'virtfleet.io/HostPool/health.lua');
      writeFileSync(script, `local m = string.format("%d hosts", 1)\n${readFileSync(script, 'utf8')}`);
      const noString = runner(['test', dir]);
      expect(noString.status).toBe(1);
      expect(noString.stdout).toMatch(/^FAIL virtfleet\.io\/HostPool\/testdata\/\S+: .*string/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/argocd/argocd-cm.yaml', () => {
  it('is what render-argocd-cm.sh makes of the health.lua files', () => {
    const rendered = spawnSync('sh', [join(ROOT, 'deploy/argocd/render-argocd-cm.sh')], { encoding: 'utf8' });
    expect({ status: rendered.status, stderr: rendered.stderr }).toEqual({ status: 0, stderr: '' });
    expect(readFileSync(ARGOCD_CM, 'utf8')).toBe(rendered.stdout);
    const configMap = parse(readFileSync(ARGOCD_CM, 'utf8')) as { data: Record<string, string> };
    expect(configMap.data).toEqual(
      Object.fromEntries(
        KINDS.map((kind) => [
          `resource.customizations.health.virtfleet.io_${kind}`,
          readFileSync(join(kindDir(kind), 'health.lua'), 'utf8'),
        ]),
      ),
    );
  });

  it('passes a server-side dry run as a merge patch of an existing argocd-cm', async () => {
    await kubectl(['create', 'namespace', 'argocd']);
    await kubectl(['-n', 'argocd', 'create', 'configmap', 'argocd-cm', '--from-literal=url=https://argocd.example']);
    const patched = await kubectl([
      '-n',
      'argocd',
      'patch',
      'configmap',
      'argocd-cm',
      '--type',
      'merge',
      '--patch-file',
      ARGOCD_CM,
      '--dry-run=server',
      '-o',
      'json',
    ]);
    expect({ code: patched.code, stderr: patched.stderr }).toEqual({ code: 0, stderr: '' });
    const data = (JSON.parse(patched.stdout) as { data: Record<string, string> }).data;
    // One key per kind, and the existing key left as it was.
    expect(Object.keys(data).sort()).toEqual(
      [...KINDS.map((kind) => `resource.customizations.health.virtfleet.io_${kind}`), 'url'].sort(),
    );
  });
});
