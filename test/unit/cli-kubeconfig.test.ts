// The first thing a newcomer without a kubeconfig meets: `virtfleet vm stop x` or `virtfleet ks
// render p` says which kubeconfig was looked for and how to give one (--kubeconfig, KUBECONFIG),
// and `ks render` that --file needs no cluster; a usage error, exit status 2. Not the client's
// "HTTP protocol is not allowed when skipTLSVerify is not set or false" (it falls back to a
// made-up http://localhost:8080). The real program runs, with HOME an empty directory; no
// cluster is needed, none is reached.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runCli, type CliRun } from '../harness/cli.js';

const home = mkdtempSync(join(tmpdir(), 'virtfleet-no-kubeconfig-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function virtfleet(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'KUBECONFIG'));
  return runCli(args, { env: { ...inherited, HOME: home, ...env } });
}

const LOOKED_FOR = join(home, '.kube', 'config');

describe('the CLI without a kubeconfig', () => {
  it('`vm stop x` names the file looked for, --kubeconfig and KUBECONFIG, and exits 2', async () => {
    const result = await virtfleet(['vm', 'stop', 'x']);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr:
        `error: no kubeconfig: $KUBECONFIG is not set, ${LOOKED_FOR} does not exist, and this is not a pod with a service account. ` +
        'Give one with --kubeconfig FILE or KUBECONFIG=FILE.\n',
    });
  }, 60_000);

  it('`ks render p` says the same, and that --file renders without a cluster', async () => {
    const result = await virtfleet(['ks', 'render', 'p']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      `virtfleet ks render: no kubeconfig: $KUBECONFIG is not set, ${LOOKED_FOR} does not exist`,
    );
    expect(result.stderr).toContain('--kubeconfig FILE or KUBECONFIG=FILE');
    expect(result.stderr).toContain('without a cluster: virtfleet ks render --file PROFILE.yaml');
    expect(result.stderr).not.toContain('HTTP protocol');
  }, 60_000);

  it('names a file given by --kubeconfig or KUBECONFIG that does not exist, and exits 2', async () => {
    const missing = join(home, 'missing.yaml');
    expect(await virtfleet(['vm', 'start', 'x', '--kubeconfig', missing])).toEqual({
      code: 2,
      stdout: '',
      stderr: `error: cannot read kubeconfig ${missing} (from --kubeconfig): no such file\n`,
    });
    expect(await virtfleet(['vm', 'start', 'x'], { KUBECONFIG: missing })).toEqual({
      code: 2,
      stdout: '',
      stderr: `error: cannot read kubeconfig ${missing} (listed in $KUBECONFIG): no such file\n`,
    });
  }, 60_000);

  it('still reads ~/.kube/config when it is there (the request then fails on the cluster, exit 1)', async () => {
    const other = mkdtempSync(join(tmpdir(), 'virtfleet-kubeconfig-'));
    try {
      mkdirSync(join(other, '.kube'));
      // A server nothing listens on: the error is the connection's, after the kubeconfig was read.
      writeFileSync(
        join(other, '.kube', 'config'),
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
          'users: [{name: u, user: {token: t}}]',
          'contexts: [{name: x, context: {cluster: c, user: u, namespace: ns1}}]',
          'current-context: x',
          '',
        ].join('\n'),
      );
      const result = await virtfleet(['vm', 'stop', 'x'], { HOME: other });
      expect(result.code).toBe(1);
      expect(result.stderr).not.toContain('no kubeconfig');
      expect(result.stderr).toMatch(/ECONNREFUSED|connect/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }, 60_000);
});
