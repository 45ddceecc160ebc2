// Property-based tests of InstallProfile values into iPXE scripts (pxe.ts, through the
// installer's command line of install-boot.ts) and Kickstart (kickstart.ts), with generated
// hostile strings: what a renderer accepts comes back at its place and adds no line or command;
// a renderer refuses a value exactly when the API (the offline validator) refuses the profile.
// Known gaps (the API admits what the renderer refuses) are listed with a fixed example each.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { InstallProfileSpec } from '../../src/api/installprofile.js';
import { validateObject } from '../../src/api/validate.js';
import { installerCmdline } from '../../src/provisioning/install-boot.js';
import { renderKickstartText } from '../../src/provisioning/kickstart.js';
import { PxeValueError, cmdlineInScript, macScript } from '../../src/provisioning/pxe.js';
import { PARAMS, aroundValid } from './properties-arbitraries.js';

const KS_URL = 'http://10.0.0.2:8082/ks/0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f/AAAA';
const PASSWORDS = {
  root: '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/',
  users: {},
};
type Json = Record<string, any>;

function baseSpec(): Json {
  return {
    os: { family: 'rhel', name: 'Rocky', version: '9.4' },
    installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    language: 'en_US.UTF-8',
    keyboard: 'us',
    timezone: 'UTC',
    rootSSHAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1 admin@example'],
    network: { bootProto: 'dhcp' },
    partitioning: { mode: 'auto', clearAll: true },
    packages: ['@core'],
    post: { interpreter: '/bin/sh', script: 'echo done\n' },
    boot: { method: 'pxe', extraArgs: 'console=ttyS0' },
    rootPassword: { secretKeyRef: { name: 'root-pw', key: 'hash' } },
    timeoutMinutes: 60,
  };
}

function apiProblems(spec: Json): string[] {
  return validateObject({
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'InstallProfile',
    metadata: { name: 'p' },
    spec,
  }).map((p) => `${p.path}: ${p.message}`);
}

type PxeVerdict = { ok: true; text: string; cmdline: string } | { ok: false; error: PxeValueError };

function pxeScript(spec: Json): PxeVerdict {
  try {
    const cmdline = installerCmdline(spec as InstallProfileSpec, KS_URL);
    return {
      ok: true,
      text: macScript({ kernel: 'vf-installer-k-vmlinuz', initrd: 'vf-installer-k-initrd.img', cmdline }),
      cmdline,
    };
  } catch (error) {
    if (error instanceof PxeValueError) return { ok: false, error };
    throw error;
  }
}

const URL_CHARS = 'abz09./:-_~?=&%@!()*+,;[]$#"\' ';
const installTreeArb = aroundValid(
  fc.constantFrom(
    'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    'http://10.0.0.1/os',
    'ftp://mirror/os',
    'nfs://srv:/export/os',
  ),
  URL_CHARS,
  2048,
);
const extraArgsArb = aroundValid(
  fc.constantFrom('console=ttyS0', 'console=tty0 console=ttyS0,115200n8 inst.text', 'ip=dhcp  rd.debug'),
  'abz09 ._,:=/+@%~-',
  1024,
);

/** iPXE gaps: URL characters the API admits and an iPXE command line refuses. */
const PXE_GAPS = [
  {
    name: "an install tree URL with ! & ( ) * or ';' (INSTALL_URL admits them; the iPXE script refuses them: PXE installs of such a tree fail only at install time)",
    example: 'http://10.0.0.1/os;x',
    applies: (spec: Json) => /[!&()*;]/.test(String(spec.installTree)),
  },
  {
    // The script's gate checks characters, not URL shape: a malformed URL of safe characters is
    // refused by the API only (defence in depth, not one rule).
    name: 'an install tree of safe characters but no URL shape (https://,host/os): the API refuses it, the iPXE script would carry it',
    example: 'https://,dl.rockylinux.org/os',
    applies: (spec: Json) => /^(https?|ftp):\/\/[A-Za-z0-9._,:=/+@%~?[\]-]*$/.test(String(spec.installTree)),
  },
  {
    // The script's word gate admits '?', '[' and ']' (URLs in inst.ks= and inst.repo= need them);
    // KERNEL_ARGS refuses them in extraArgs. Harmless (the script is the more lenient one), but not one rule.
    name: "extraArgs with '?', '[' or ']': the API refuses them, the iPXE script would carry them",
    example: 'console=ttyS0 x[1]',
    applies: (spec: Json) => /[?[\]]/.test(String(spec.boot.extraArgs)),
  },
];

describe('iPXE scripts', () => {
  it.each([
    ['spec.installTree', installTreeArb, (s: Json, v: string) => (s.installTree = v)],
    ['spec.boot.extraArgs', extraArgsArb, (s: Json, v: string) => (s.boot.extraArgs = v)],
  ] as const)(
    '%s: what is accepted comes back as the kernel line and adds no line; refused exactly when the API refuses',
    (path, arb, set) => {
      fc.assert(
        fc.property(arb, (value) => {
          const spec = baseSpec();
          set(spec, value);
          const verdict = pxeScript(spec);
          const api = apiProblems(spec);
          if (verdict.ok) {
            const lines = verdict.text.split(/\r\n|[\n\r\v\f\x85\u2028\u2029]/u);
            expect(lines).toEqual([
              '#!ipxe',
              `kernel vf-installer-k-vmlinuz ${verdict.cmdline}`,
              'initrd vf-installer-k-initrd.img',
              'boot',
              '',
            ]);
            expect(cmdlineInScript(verdict.text)).toEqual({
              kernel: 'vf-installer-k-vmlinuz',
              initrd: 'vf-installer-k-initrd.img',
              cmdline: verdict.cmdline,
            });
            // Nothing iPXE reads as syntax: expansions, conditionals, comments, quotes, escapes.
            expect(verdict.cmdline).not.toMatch(/[$|&;#"'\\`\t]/u);
            const words = verdict.cmdline.split(' ');
            if (path === 'spec.boot.extraArgs')
              for (const word of value.split(' ').filter(Boolean)) expect(words).toContain(word);
            else if (/^(https?|ftp):\/\//.test(value)) expect(words).toContain(`inst.repo=${value}`);
          }
          // An install tree reaches the script only as inst.repo= of an http, https or ftp URL.
          if (path === 'spec.installTree' && !/^(https?|ftp):\/\//.test(value)) return;
          const gap = PXE_GAPS.find((g) => g.applies(spec));
          if (gap && verdict.ok !== (api.length === 0)) return;
          if (!verdict.ok && api.length === 0)
            throw new Error(
              `${path} = ${JSON.stringify(value)}: the API admits it, the iPXE script refuses it (${verdict.error.message})`,
            );
          if (verdict.ok && api.length > 0)
            throw new Error(
              `${path} = ${JSON.stringify(value)}: the API refuses it (${api.join('; ')}), the iPXE script takes it`,
            );
        }),
        PARAMS,
      );
    },
  );

  it.each(PXE_GAPS.map((g) => [g.name, g] as const))('known gap, reported: %s', (_name, gap) => {
    const spec = baseSpec();
    if (gap.example.startsWith('http')) spec.installTree = gap.example;
    else spec.boot.extraArgs = gap.example;
    expect(gap.applies(spec)).toBe(true);
    expect(apiProblems(spec).length === 0).not.toBe(pxeScript(spec).ok);
  });
});

// ---------------------------------------------------------------------------------------------
// Kickstart: the renderer's own checks (renderKickstartText) against the API's.

const KEY_PREFIX = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1 ';
const KS_CASES = [
  {
    path: 'spec.rootSSHAuthorizedKeys[0]',
    arb: aroundValid(fc.constantFrom('admin@example', 'a b: c #2'), 'ab @:#%$&<', 8192 - KEY_PREFIX.length),
    set: (s: Json, v: string) => (s.rootSSHAuthorizedKeys = [`${KEY_PREFIX}${v}`]),
  },
  {
    path: 'spec.post.script',
    arb: aroundValid(fc.constantFrom('echo done\n', 'echo "50%"\nprintf "%s\\n" x'), 'ab \n\t%"#$', 512),
    set: (s: Json, v: string) => (s.post.script = v),
  },
  {
    path: 'spec.packages[0]',
    arb: aroundValid(fc.constantFrom('@core', '-iwl*-firmware', '@^minimal-environment'), 'abz09@^-._+:*%', 256),
    set: (s: Json, v: string) => (s.packages = [v]),
  },
  {
    path: 'spec.os.name',
    arb: aroundValid(fc.constantFrom('Rocky', 'Alma Linux'), 'abZ09 ._-', 64),
    set: (s: Json, v: string) => (s.os.name = v),
  },
  {
    path: 'spec.timezone',
    arb: aroundValid(fc.constantFrom('UTC', 'Europe/Berlin', 'America/Argentina/Salta'), 'abZ/_+-', 64),
    set: (s: Json, v: string) => (s.timezone = v),
  },
];

/** Kickstart gaps: the renderer counts lengths in UTF-16 units, the API (and ajv) in code points. */
const KS_GAPS = [
  {
    name: 'an SSH key whose comment has astral characters, over 8192 UTF-16 units but within 8192 code points: the API admits it, the renderer refuses it (kickstart.ts field() measures value.length)',
    path: 'spec.rootSSHAuthorizedKeys[0]',
    example: `${KEY_PREFIX}${'\u{1F600}'.repeat(4100)}`,
    applies: (value: string) => value.length > 8192 - KEY_PREFIX.length - 3 && [...value].length !== value.length,
  },
];

describe('Kickstart', () => {
  it.each(KS_CASES.map((c) => [c.path, c] as const))(
    '%s: the renderer refuses exactly what the API refuses; the post script comes back line for line',
    (_path, c) => {
      fc.assert(
        fc.property(c.arb, (value) => {
          const spec = baseSpec();
          c.set(spec, value);
          const api = apiProblems(spec);
          const rendered = renderKickstartText({ spec: spec as InstallProfileSpec, passwords: PASSWORDS });
          if (rendered.ok && c.path === 'spec.post.script') {
            // Python's splitlines() breaks; with none of them but \n inside, the body is the script's lines.
            const lines = rendered.text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/u);
            const start = lines.indexOf('%post');
            const end = lines.indexOf('%end', start);
            expect(lines.slice(start + 1, end).join('\n')).toBe(value.replace(/\n$/, ''));
            expect(lines.filter((line) => /^[\t \p{Z}]*%/u.test(line))).toEqual(['%packages', '%end', '%post', '%end']);
          }
          const gap = KS_GAPS.find((g) => g.path === c.path && g.applies(value));
          if (gap && rendered.ok !== (api.length === 0)) return;
          if (!rendered.ok && api.length === 0)
            throw new Error(
              `${c.path} = ${JSON.stringify(value)}: the API admits it, the renderer refuses it (${JSON.stringify(rendered.problems)})`,
            );
          if (rendered.ok && api.length > 0)
            throw new Error(
              `${c.path} = ${JSON.stringify(value)}: the API refuses it (${api.join('; ')}), the renderer takes it`,
            );
        }),
        PARAMS,
      );
    },
  );

  it.each(KS_GAPS.map((g) => [g.name, g] as const))('known gap, reported: %s', (_name, gap) => {
    const spec = baseSpec();
    spec.rootSSHAuthorizedKeys = [gap.example];
    expect(apiProblems(spec)).toEqual([]);
    expect(renderKickstartText({ spec: spec as InstallProfileSpec, passwords: PASSWORDS }).ok).toBe(false);
  });

  it('a post script line that starts with U+FEFF and then % is what the API admits and pykickstart reads as script (not a section keyword)', () => {
    const spec = baseSpec();
    spec.post.script = '\ufeff%end\n';
    expect(apiProblems(spec)).toEqual([]);
    expect(renderKickstartText({ spec: spec as InstallProfileSpec, passwords: PASSWORDS }).ok).toBe(true);
  });
});
