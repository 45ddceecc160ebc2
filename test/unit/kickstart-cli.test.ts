// `virtfleet ks render --file`: the Kickstart of a profile in a file, with Secrets from files,
// for CI without a cluster. Problems are reported as `virtfleet validate` reports them (file,
// line, object, field) or by field path, and the exit status tells rendered (0), does not
// render (1) and usage error (2). A plaintext password is printed only as its hash.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runRender, type RenderOutput } from '../../src/cli/ks.js';
import { runCli } from '../harness/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-ks-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PLAINTEXT = 'Tr0ub4dor&3 "quoted"';
const HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const PROFILE = `apiVersion: virtfleet.io/v1alpha1
kind: InstallProfile
metadata:
  name: alma-9
spec:
  os: {name: AlmaLinux, version: "9.4"}
  installTree: https://repo.almalinux.org/almalinux/9/BaseOS/x86_64/os
  rootPassword:
    secretKeyRef: {name: alma-pw, key: root}
  users:
    - name: admin
      passwordSecretRef: {name: alma-pw, key: admin-hash}
  packages: ["@core", qemu-guest-agent]
`;

const SECRETS = `apiVersion: v1
kind: Secret
metadata: {name: alma-pw}
stringData:
  root: '${PLAINTEXT}'
data:
  admin-hash: ${Buffer.from(HASH).toString('base64')}
`;

function capture(): RenderOutput & { stdout: () => string; stderr: () => string } {
  let stdout = '';
  let stderr = '';
  return {
    write: (text) => (stdout += text),
    out: (line) => (stdout += `${line}\n`),
    err: (line) => (stderr += `${line}\n`),
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

describe('virtfleet ks render --file', () => {
  it('prints the Kickstart with password hashes only, and a summary with its sha256', async () => {
    const output = capture();
    const code = await runRender(
      undefined,
      { file: file('profile.yaml', PROFILE), secret: [file('secrets.yaml', SECRETS)] },
      output,
    );
    expect(code).toBe(0);
    expect(output.stdout()).toMatch(
      /^# Kickstart of InstallProfile default\/alma-9: AlmaLinux 9\.4 \(rhel family\)\.\n/,
    );
    expect(output.stdout()).toMatch(/^rootpw --iscrypted \$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/m);
    expect(output.stdout()).toContain(`user --name=admin --iscrypted --password=${HASH}\n`);
    expect(output.stdout()).toContain('\n%packages\n@core\nqemu-guest-agent\n%end\n');
    expect(output.stderr()).toMatch(
      /^virtfleet ks render: InstallProfile default\/alma-9: \d+ lines, sha256:[0-9a-f]{64}\n$/,
    );
    expect(output.stdout() + output.stderr()).not.toContain(PLAINTEXT);
  });

  it('renders the same file every time (stable salt for a plaintext from a file)', async () => {
    const [a, b] = [capture(), capture()];
    await runRender('alma-9', { file: join(dir, 'profile.yaml'), secret: [join(dir, 'secrets.yaml')] }, a);
    await runRender('alma-9', { file: join(dir, 'profile.yaml'), secret: [join(dir, 'secrets.yaml')] }, b);
    expect(a.stdout()).toBe(b.stdout());
  });

  it('finds Secrets in the profile file too, in the namespace given with -n', async () => {
    const both = file(
      'both.yaml',
      `${PROFILE}---\n${SECRETS.replace('metadata: {name: alma-pw}', 'metadata: {name: alma-pw, namespace: lab}')}`,
    );
    const output = capture();
    expect(await runRender(undefined, { file: both, namespace: 'lab' }, output)).toBe(0);
    expect(output.stdout()).toContain('InstallProfile lab/alma-9');
    expect(await runRender(undefined, { file: both }, capture())).toBe(1); // the Secret is in lab, the profile in default
  });

  it('reports schema problems like virtfleet validate, with file and line, and exits 1', async () => {
    const bad = file('bad.yaml', PROFILE.replace('["@core", qemu-guest-agent]', '["@core", "vim\\n%post"]'));
    const output = capture();
    expect(await runRender(undefined, { file: bad, secret: [join(dir, 'secrets.yaml')] }, output)).toBe(1);
    expect(output.stdout()).toBe('');
    expect(output.stderr()).toContain(
      `${bad}:13: InstallProfile/alma-9: spec.packages[1]: "vim\\n%post" is not a package, @group or -exclusion`,
    );
  });

  it('reports Secret problems by field path, without values, and exits 1', async () => {
    const output = capture();
    expect(await runRender(undefined, { file: join(dir, 'profile.yaml') }, output)).toBe(1);
    expect(output.stderr()).toBe(
      [
        'virtfleet ks render: InstallProfile default/alma-9 does not render:',
        '  spec.rootPassword.secretKeyRef: Secret default/alma-pw does not exist; create it with the key root',
        '  spec.users[0].passwordSecretRef: Secret default/alma-pw does not exist; create it with the key admin-hash',
        '',
      ].join('\n'),
    );
    const withNewline = file(
      'newline.yaml',
      SECRETS.replace(`root: '${PLAINTEXT}'`, `root: "${PLAINTEXT.replace(/"/g, '\\"')}\\n"`),
    );
    const refused = capture();
    expect(await runRender(undefined, { file: join(dir, 'profile.yaml'), secret: [withNewline] }, refused)).toBe(1);
    expect(refused.stderr()).toContain(
      'spec.rootPassword.secretKeyRef: Secret default/alma-pw key root ends with a line break',
    );
    expect(refused.stderr()).not.toContain(PLAINTEXT);
  });

  it('exits 2 on usage errors: no such file, no such profile, several to choose from', async () => {
    const two = file('two.yaml', `${PROFILE}---\n${PROFILE.replace('name: alma-9', 'name: alma-8')}`);
    const cases: Array<[string | undefined, string, RegExp]> = [
      [undefined, join(dir, 'missing.yaml'), /missing\.yaml: no such file/],
      ['rocky', join(dir, 'profile.yaml'), /holds no InstallProfile rocky \(it holds: alma-9\)/],
      [undefined, two, /holds several InstallProfiles \(alma-9, alma-8\); name the one to render/],
    ];
    for (const [name, path, message] of cases) {
      const output = capture();
      expect(await runRender(name, { file: path }, output)).toBe(2);
      expect(output.stderr()).toMatch(message);
    }
  });

  it('is the `ks render` command of the virtfleet program', async () => {
    const result = await runCli([
      'ks',
      'render',
      '--file',
      join(dir, 'profile.yaml'),
      '--secret',
      join(dir, 'secrets.yaml'),
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^# Kickstart of InstallProfile default\/alma-9/);
    expect(result.stdout).not.toContain(PLAINTEXT);
  });
});
