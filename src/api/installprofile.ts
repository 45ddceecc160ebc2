// InstallProfile: an unattended OS install, rendered to Kickstart.
//
// Every string here ends up in a Kickstart file, an iPXE script or a kernel command line, so
// each is held to a pattern that cannot break out of its line or section: no newlines, no
// quotes where the renderer quotes, no '%' at the start of a %post line.
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  ABSOLUTE_PATH,
  AGE_COLUMN,
  DNS_SUBDOMAIN,
  INSTALL_URL,
  INTERFACE_NAME,
  IPV4,
  bool,
  conditionColumn,
  conditions,
  definePattern,
  int,
  listOf,
  matching,
  namedList,
  obj,
  oneOf,
  quantity,
  secretKeySelector,
  str,
  type ResourceDefinition,
} from './common.js';
import { isQuantity, quantityWithin } from './quantity.js';
import { withRules } from './rules.js';

const show = (v: string) => JSON.stringify(v);
const codePoint = (c: string) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

const OS_NAME = definePattern(
  '^[A-Za-z0-9][A-Za-z0-9 ._-]*$',
  64,
  (v) => `${show(v)} is not an OS name (e.g. Rocky, AlmaLinux, Fedora)`,
);
const OS_VERSION = definePattern(
  '^[0-9]+(\\.[0-9]+)*$',
  16,
  (v) => `${show(v)} is not an OS version (digits and dots, e.g. 9.4)`,
);
const REPO_ID = definePattern(
  '^[A-Za-z0-9][A-Za-z0-9._-]*$',
  64,
  (v) => `${show(v)} is not a repository id (letters, digits, '.', '_' and '-')`,
);
const LANGUAGE = definePattern(
  '^[a-z]{2,3}(_[A-Z]{2})?(\\.[A-Za-z0-9-]+)?(@[a-z]+)?$',
  64,
  (v) => `${show(v)} is not a locale (e.g. en_US.UTF-8 or de_DE.UTF-8)`,
);
const KEYBOARD = definePattern(
  '^[A-Za-z0-9_-]+$',
  64,
  (v) => `${show(v)} is not a console keymap (e.g. us, de-nodeadkeys)`,
);
const TIMEZONE = definePattern(
  '^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})$',
  64,
  (v) => `${show(v)} is not a time zone (UTC or Area/City, e.g. Europe/Berlin)`,
);
const LINUX_USER = definePattern(
  '^[a-z_][a-z0-9_-]{0,31}$',
  32,
  (v) => `${show(v)} is not a Linux user or group name (lowercase letters, digits, '_' and '-', at most 32)`,
);
// Key type, base64 body, optional comment; the comment may not hold '"' or '\' because the
// renderer writes the key inside double quotes (sshkey --username=... "KEY"), nor anything that
// breaks a line: C0 and C1 controls (\x85 is NEL) and the Unicode line and paragraph separators
// (U+2028, U+2029; \p{Zl} and \p{Zp} in RE2 and JavaScript alike).
const SSH_PUBLIC_KEY = definePattern(
  String.raw`^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^"\\\x00-\x1f\x7f-\x9f\p{Zl}\p{Zp}]*)?$`,
  8192,
  (v) => {
    const bad = /["\\\x00-\x1f\x7f-\x9f\u2028\u2029]/u.exec(v);
    const found = bad ? ` (character ${bad.index + 1} is ${codePoint(bad[0])})` : '';
    return (
      `${show(v.length > 40 ? `${v.slice(0, 40)}...` : v)} is not one SSH public key line${found}: type, key and an optional comment ` +
      'without quotes, backslashes, control characters or line separators such as U+0085 and U+2028 (e.g. ssh-ed25519 AAAA... user@host)'
    );
  },
);
const MOUNT_POINT = definePattern(
  '^(/|(/[A-Za-z0-9._-]+)+|swap|biosboot)$',
  256,
  (v) => `${show(v)} is not a mount point (an absolute path, swap or biosboot)`,
);
// As specified, plus '@^' for environment groups (e.g. @^minimal-environment).
const PACKAGE = definePattern(
  '^-?(@\\^?)?[A-Za-z0-9][A-Za-z0-9._+:*-]*$',
  256,
  (v) => `${show(v)} is not a package, @group or -exclusion (no spaces, '%' or newlines)`,
);
// Kernel arguments also land in an iPXE script, where '$', '|', '&', ';' and quotes have meaning.
const KERNEL_ARGS = definePattern(
  '^[A-Za-z0-9 ._,:=/+@%~-]*$',
  1024,
  (v) =>
    `${show(v)} contains characters not allowed in kernel arguments (allowed: letters, digits, space and . _ , : = / + @ % ~ -)`,
);

const MIN_PART = '1Mi';

const Network = withRules(
  obj(
    'Network configuration of the installed system (Kickstart network).',
    {
      bootProto: oneOf('dhcp, or static with ip and netmask.', ['dhcp', 'static'], { default: 'dhcp' }),
      device: Type.Optional(
        matching('Interface to configure, e.g. ens3, or link for the first with a link.', INTERFACE_NAME),
      ),
      ip: Type.Optional(matching('IPv4 address, for static.', IPV4)),
      netmask: Type.Optional(matching('IPv4 netmask, e.g. 255.255.255.0, for static.', IPV4)),
      gateway: Type.Optional(matching('IPv4 default gateway.', IPV4)),
      nameservers: Type.Optional(listOf('DNS servers (IPv4).', matching('An IPv4 address.', IPV4), { maxItems: 3 })),
      hostname: Type.Optional(matching('Host name of the installed system.', DNS_SUBDOMAIN)),
    },
    { default: {} },
  ),
  [
    {
      id: 'ip-static-needs-ip',
      cel: "self.bootProto != 'static' || has(self.ip)",
      message: 'bootProto static needs ip',
      fieldPath: '.ip',
      reason: 'FieldValueRequired',
      holds: (network) => network.bootProto !== 'static' || network.ip !== undefined,
    },
    {
      id: 'ip-static-needs-netmask',
      cel: "self.bootProto != 'static' || has(self.netmask)",
      message: 'bootProto static needs netmask',
      fieldPath: '.netmask',
      reason: 'FieldValueRequired',
      holds: (network) => network.bootProto !== 'static' || network.netmask !== undefined,
    },
  ],
);

const Partition = withRules(
  obj('One partition (Kickstart part).', {
    mountPoint: matching(
      'Where it is mounted: an absolute path, or swap or biosboot for those partition kinds.',
      MOUNT_POINT,
    ),
    fsType: oneOf('File system.', ['xfs', 'ext4', 'swap', 'vfat', 'biosboot']),
    size: withRules(quantity(`Size, e.g. 20Gi (rounded down to whole MiB); at least ${MIN_PART}.`), [
      {
        id: 'ip-part-min-size',
        cel: `!isQuantity(self) || quantity(self).compareTo(quantity('${MIN_PART}')) >= 0`,
        message: `size must be at least ${MIN_PART}`,
        holds: (size) => !isQuantity(size) || quantityWithin(size, MIN_PART),
      },
    ]),
    grow: bool('Grow to fill the remaining space on the disk.', false),
  }),
  [
    {
      id: 'ip-part-special-kinds',
      cel: "(self.fsType == 'swap') == (self.mountPoint == 'swap') && (self.fsType == 'biosboot') == (self.mountPoint == 'biosboot')",
      message:
        'swap and biosboot partitions need the same word as mountPoint and fsType (e.g. mountPoint: swap, fsType: swap)',
      fieldPath: '.fsType',
      holds: (part) =>
        (part.fsType === 'swap') === (part.mountPoint === 'swap') &&
        (part.fsType === 'biosboot') === (part.mountPoint === 'biosboot'),
    },
  ],
);

const Partitioning = withRules(
  obj(
    'How the disk is partitioned.',
    {
      mode: oneOf(
        "auto: the installer's default layout (autopart); manual: the partitions in parts.",
        ['auto', 'manual'],
        {
          default: 'auto',
        },
      ),
      clearAll: bool('Erase all partitions on the disk first (clearpart --all --initlabel).', true),
      parts: Type.Optional(
        namedList('Partitions for mode manual, by mount point.', Partition, { keys: ['mountPoint'], maxItems: 32 }),
      ),
    },
    { default: {} },
  ),
  [
    {
      id: 'ip-manual-needs-parts',
      cel: "self.mode != 'manual' || (has(self.parts) && size(self.parts) > 0)",
      message: 'mode manual needs at least one partition in parts',
      fieldPath: '.parts',
      reason: 'FieldValueRequired',
      holds: (p) => p.mode !== 'manual' || (p.parts?.length ?? 0) > 0,
    },
    {
      id: 'ip-auto-forbids-parts',
      cel: "self.mode != 'auto' || !has(self.parts) || size(self.parts) == 0",
      message: 'mode auto lays out the disk itself: remove parts, or set mode to manual',
      fieldPath: '.parts',
      reason: 'FieldValueForbidden',
      holds: (p) => p.mode !== 'auto' || (p.parts?.length ?? 0) === 0,
    },
  ],
);

const PostScript = withRules(
  obj('A %post script, run in the installed system after the packages are installed.', {
    script: str(
      "The script. No line may start with '%': Kickstart would read it as a section keyword (a line %end would end %post early).",
      { maxLength: 65536 },
    ),
    interpreter: matching('Interpreter the script runs with.', ABSOLUTE_PATH, { default: '/bin/sh' }),
  }),
  [
    {
      // Kickstart's parser (Python's splitlines) also ends lines at \r, \v, \f, \x1c-\x1e, \x85,
      // U+2028 and U+2029: with those refused, lines are split at \n only, here as there.
      id: 'ip-post-no-control-characters',
      // Doubled backslashes: CEL's string literal undoes one level, RE2 reads the rest.
      cel: String.raw`!self.script.matches('[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}]')`,
      message:
        'the script may not contain control characters other than tab and newline (Kickstart reads \\r, \\v, \\f, \\x1c-\\x1e and \\x85 as line breaks); use LF line endings',
      fieldPath: '.script',
      holds: (post) => !/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/u.test(post.script),
    },
    {
      id: 'ip-post-no-section-lines',
      // (?m): ^ matches after every newline. Leading blanks include Unicode spaces (\pZ, e.g.
      // U+00A0), which Python's lstrip() strips too. The same regex in RE2 (CEL) and JavaScript.
      cel: String.raw`!self.script.matches('(?m)^[\\t \\pZ]*%')`,
      message: "no line of the script may start with '%' (Kickstart would read it as a section keyword such as %end)",
      fieldPath: '.script',
      holds: (post) => !/^[\t \p{Z}]*%/mu.test(post.script),
    },
  ],
);

const Boot = withRules(
  obj(
    'How the installer is booted.',
    {
      method: oneOf(
        "pxe: network boot through the host's libvirt network (TFTP + iPXE); kernel: direct kernel boot of the installer.",
        ['pxe', 'kernel'],
        { default: 'pxe' },
      ),
      kernelUrl: Type.Optional(
        matching(
          'Installer kernel; defaults to <installTree>/images/pxeboot/vmlinuz. Set together with initrdUrl.',
          INSTALL_URL,
        ),
      ),
      initrdUrl: Type.Optional(
        matching(
          'Installer initrd; defaults to <installTree>/images/pxeboot/initrd.img. Set together with kernelUrl.',
          INSTALL_URL,
        ),
      ),
      extraArgs: Type.Optional(
        matching('Extra installer kernel arguments, e.g. console=ttyS0 inst.text.', KERNEL_ARGS),
      ),
    },
    { default: {} },
  ),
  [
    {
      id: 'ip-initrd-needs-kernel',
      cel: '!has(self.initrdUrl) || has(self.kernelUrl)',
      message: 'initrdUrl needs kernelUrl: set both or neither',
      fieldPath: '.kernelUrl',
      reason: 'FieldValueRequired',
      holds: (boot) => boot.initrdUrl === undefined || boot.kernelUrl !== undefined,
    },
    {
      id: 'ip-kernel-needs-initrd',
      cel: '!has(self.kernelUrl) || has(self.initrdUrl)',
      message: 'kernelUrl needs initrdUrl: set both or neither',
      fieldPath: '.initrdUrl',
      reason: 'FieldValueRequired',
      holds: (boot) => boot.kernelUrl === undefined || boot.initrdUrl !== undefined,
    },
  ],
);

const sshKeys = (description: string) =>
  listOf(description, matching('One public key, as in authorized_keys.', SSH_PUBLIC_KEY), { maxItems: 32 });

const User = withRules(
  obj('A user account to create.', {
    name: matching('Login name.', LINUX_USER),
    groups: Type.Optional(
      listOf('Supplementary groups, e.g. wheel.', matching('A group name.', LINUX_USER), { maxItems: 32 }),
    ),
    passwordSecretRef: Type.Optional(
      secretKeySelector(
        "Secret key holding the user's password as a crypt(3) hash (e.g. from openssl passwd -6). Unset: no password login.",
      ),
    ),
    sshAuthorizedKeys: Type.Optional(sshKeys('SSH public keys allowed to log in as the user.')),
  }),
  [
    {
      id: 'ip-user-not-root',
      cel: "self.name != 'root'",
      message: 'root is configured with spec.rootPassword and spec.rootSSHAuthorizedKeys, not as a user',
      fieldPath: '.name',
      holds: (user) => user.name !== 'root',
    },
  ],
);

export const InstallProfileSpecSchema = obj('The OS to install and how.', {
  os: obj('The operating system.', {
    family: oneOf('Installer family; both use Anaconda and Kickstart.', ['rhel', 'fedora'], { default: 'rhel' }),
    name: matching('Distribution name, e.g. Rocky.', OS_NAME),
    version: matching('Distribution version, e.g. 9.4.', OS_VERSION),
  }),
  installTree: matching(
    'URL of the install tree (the directory holding images/ and the repodata), e.g. https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os.',
    INSTALL_URL,
  ),
  repos: Type.Optional(
    namedList(
      'Extra package repositories, by name.',
      obj('One repository (Kickstart repo).', {
        name: matching('Repository id.', REPO_ID),
        baseurl: matching('Base URL of the repository.', INSTALL_URL),
      }),
      { maxItems: 32 },
    ),
  ),
  language: matching('System locale.', LANGUAGE, { default: 'en_US.UTF-8' }),
  keyboard: matching('Console keymap.', KEYBOARD, { default: 'us' }),
  timezone: matching('Time zone, UTC or Area/City.', TIMEZONE, { default: 'UTC' }),
  rootPassword: obj('The root password.', {
    secretKeyRef: secretKeySelector(
      'Secret key holding the root password as a crypt(3) hash (e.g. from openssl passwd -6); only the hash is ever rendered.',
    ),
  }),
  users: Type.Optional(namedList('User accounts, by name.', User, { maxItems: 32 })),
  rootSSHAuthorizedKeys: Type.Optional(sshKeys('SSH public keys allowed to log in as root.')),
  network: Network,
  partitioning: Partitioning,
  packages: Type.Optional(
    listOf(
      'Packages (%packages): names, @groups, @^environments, and -name to exclude.',
      matching('One package entry.', PACKAGE),
      {
        maxItems: 500,
      },
    ),
  ),
  post: Type.Optional(PostScript),
  boot: Boot,
  timeoutMinutes: int('Minutes the install may take before it counts as failed.', {
    minimum: 5,
    maximum: 1440,
    default: 60,
  }),
});

export const InstallProfileStatusSchema = obj('The observed state of the profile, written by the controller.', {
  conditions: Type.Optional(
    conditions(
      'Valid: the profile renders to a Kickstart file and its Secrets exist. Ready: the same verdict, for kstatus; ' +
        'Stalled (an invalid spec or Secret) or Reconciling (a Secret not found yet) while it is not valid.',
    ),
  ),
  renderedHash: Type.Optional(
    str('SHA-256 of the rendered Kickstart file (with secrets), to tell when installs would differ.', {
      maxLength: 128,
    }),
  ),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

export type InstallProfileSpec = Static<typeof InstallProfileSpecSchema>;
export type InstallProfileStatus = Static<typeof InstallProfileStatusSchema>;

/** An InstallProfile as the API server returns it: defaults applied. */
export interface InstallProfile {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'InstallProfile';
  metadata: V1ObjectMeta;
  spec: InstallProfileSpec;
  status?: InstallProfileStatus;
}

export const installProfileResource: ResourceDefinition = {
  kind: 'InstallProfile',
  plural: 'installprofiles',
  singular: 'installprofile',
  listKind: 'InstallProfileList',
  // Not `ip`: since Kubernetes 1.33 that short name belongs to networking.k8s.io IPAddress, and
  // kubectl resolves it to the built-in resource.
  shortNames: ['iprof'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'An unattended OS install (RHEL-family or Fedora), rendered to Kickstart and booted by PXE or direct kernel boot; ' +
    'VirtualMachines refer to it in spec.install.profileRef.',
  spec: InstallProfileSpecSchema,
  status: InstallProfileStatusSchema,
  printerColumns: [
    conditionColumn('Valid', 'Whether the profile renders and its Secrets exist.'),
    { name: 'OS', type: 'string', jsonPath: '.spec.os.name', description: 'Distribution name.' },
    {
      name: 'Version',
      type: 'string',
      jsonPath: '.spec.os.version',
      description: 'Distribution version.',
      priority: 1,
    },
    { name: 'Boot', type: 'string', jsonPath: '.spec.boot.method', description: 'pxe or kernel.' },
    AGE_COLUMN,
  ],
};
