// An InstallProfile and its resolved password hashes → a Kickstart file for Anaconda (RHEL 8/9
// family and Fedora), in the grammar docs/provisioning.md shows directive by directive.
//
// Pure: no I/O, no clock, no randomness; the same input renders the same bytes, so the sha256 of
// the text (status.renderedHash) changes only when the install would.
//
// Two layers refuse bad values, each naming the field path:
//   1. the API schema and its cross-field rules (src/api/validate.ts), exactly as the API server
//      and `virtfleet validate` apply them, with the same messages;
//   2. this renderer's own checks, which do not rely on layer 1: every field is checked again
//      against the schema's pattern (same message), and every value passes a Kickstart gate
//      (kickstart-syntax.ts) that makes it one word or one quoted string, or refuses it.
// renderKickstart() applies both; renderKickstartText() only the second (tests use it to show
// that hostile values are refused even where the schema would have let them through).
import { createHash } from 'node:crypto';
import { API_VERSION, patternHint } from '../api/common.js';
import { InstallProfileSpecSchema, type InstallProfileSpec } from '../api/installprofile.js';
import type { Problem } from '../api/problems.js';
import { parseQuantity } from '../api/quantity.js';
import { validateObject, withDefaults } from '../api/validate.js';
import { KickstartValueError, command, comment, option, quoted, scriptBody, word } from './kickstart-syntax.js';
import { isCryptHash } from './passwords.js';

export interface ResolvedPasswords {
  /** crypt hash of root's password; undefined renders `rootpw --lock` when the spec names none. */
  root?: string;
  /** crypt hash per user name, for users with a passwordSecretRef. */
  users: Record<string, string>;
}

export interface KickstartInput {
  spec: InstallProfileSpec;
  passwords: ResolvedPasswords;
  /** The profile, named in the file's header comment. */
  profile?: { namespace?: string; name?: string };
}

export type KickstartResult = { ok: true; text: string; hash: string } | { ok: false; problems: Problem[] };

/** What ends the install. The controller waits for the guest to power off, then boots it from disk. */
export const FINISH = 'poweroff';

/** Validates the spec as the API server does, then renders; problems name field paths. */
export function renderKickstart(input: KickstartInput): KickstartResult {
  const object = {
    apiVersion: API_VERSION,
    kind: 'InstallProfile',
    metadata: { name: input.profile?.name ?? 'profile' },
    spec: input.spec,
  };
  const problems = validateObject(object).filter((problem) => problem.path.startsWith('spec'));
  if (problems.length > 0) return { ok: false, problems };
  return renderKickstartText({ ...input, spec: withDefaults(object).spec });
}

/** sha256 of the rendered text, as status.renderedHash carries it. */
export function kickstartHash(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/** Renders with the renderer's own checks only (the spec is taken as defaulted). */
export function renderKickstartText(input: KickstartInput): KickstartResult {
  const problems: Problem[] = [];
  const lines: string[] = [];
  /** Runs one directive's builder; a refused value becomes a problem, and rendering goes on to find more. */
  const emit = (build: () => string | string[] | undefined): void => {
    try {
      const out = build();
      if (out !== undefined) lines.push(...(Array.isArray(out) ? out : [out]));
    } catch (error) {
      if (!(error instanceof KickstartValueError)) throw error;
      problems.push({ path: error.path, message: error.message });
    }
  };
  const { spec, passwords } = input;

  emit(() => headerLines(input));
  lines.push('text');
  emit(() =>
    command(
      'url',
      option('url', field(spec.installTree, 'spec.installTree', ['installTree']), 'spec.installTree', 'quoted'),
    ),
  );
  (spec.repos ?? []).forEach((repo, i) => emit(() => repoLine(repo, `spec.repos[${i}]`)));
  emit(() => command('lang', word(field(spec.language, 'spec.language', ['language']), 'spec.language')));
  emit(() =>
    command('keyboard', option('vckeymap', field(spec.keyboard, 'spec.keyboard', ['keyboard']), 'spec.keyboard')),
  );
  emit(() => command('timezone', word(field(spec.timezone, 'spec.timezone', ['timezone']), 'spec.timezone'), '--utc'));
  emit(() => networkLine(spec.network ?? { bootProto: 'dhcp' }));
  emit(() => rootpwLine(spec, passwords));
  (spec.users ?? []).forEach((user, i) =>
    emit(() =>
      userLine(
        user,
        Object.hasOwn(passwords.users, user.name) ? passwords.users[user.name] : undefined,
        `spec.users[${i}]`,
      ),
    ),
  );
  (spec.rootSSHAuthorizedKeys ?? []).forEach((key, i) =>
    emit(() => sshkeyLine('root', key, `spec.rootSSHAuthorizedKeys[${i}]`)),
  );
  (spec.users ?? []).forEach((user, i) =>
    (user.sshAuthorizedKeys ?? []).forEach((key, k) =>
      emit(() => sshkeyLine(user.name, key, `spec.users[${i}].sshAuthorizedKeys[${k}]`, `spec.users[${i}].name`)),
    ),
  );
  emit(() => bootloaderLine(spec.boot?.extraArgs));
  emit(() => partitioningLines(spec.partitioning ?? { mode: 'auto', clearAll: true }));
  lines.push(FINISH);
  emit(() => packagesSection(spec.packages ?? []));
  if (spec.post) emit(() => postSection(spec.post!));

  if (problems.length > 0) return { ok: false, problems: dedupe(problems) };
  const text = `${lines.join('\n')}\n`;
  return { ok: true, text, hash: kickstartHash(text) };
}

// ---------------------------------------------------------------------------------------------
// Directives

function headerLines({ spec, profile }: KickstartInput): string[] {
  const name = profile?.name
    ? `${profile.namespace ? `${profile.namespace}/` : ''}${profile.name}`
    : 'an InstallProfile';
  const os = `${field(spec.os.name, 'spec.os.name', ['os', 'name'])} ${field(spec.os.version, 'spec.os.version', ['os', 'version'])}`;
  const family = field(spec.os.family ?? 'rhel', 'spec.os.family', ['os', 'family']);
  return [
    comment(`Kickstart of InstallProfile ${name}: ${os} (${family} family).`, 'spec.os'),
    comment('Rendered by virtfleet from the profile and its Secrets; change the profile, not this file.', 'spec'),
  ];
}

function repoLine(repo: { name: string; baseurl: string }, path: string): string {
  return command(
    'repo',
    option('name', field(repo.name, `${path}.name`, ['repos', 'items', 'name']), `${path}.name`, 'quoted'),
    option(
      'baseurl',
      field(repo.baseurl, `${path}.baseurl`, ['repos', 'items', 'baseurl']),
      `${path}.baseurl`,
      'quoted',
    ),
  );
}

function networkLine(network: InstallProfileSpec['network']): string {
  const at = (name: string) => `spec.network.${name}`;
  const check = (name: keyof typeof network & string, value: string) => field(value, at(name), ['network', name]);
  const words = [option('bootproto', check('bootProto', network.bootProto ?? 'dhcp'), at('bootProto'))];
  if (network.device !== undefined) words.push(option('device', check('device', network.device), at('device')));
  if (network.bootProto === 'static') {
    if (network.ip === undefined) throw new KickstartValueError(at('ip'), 'bootProto static needs ip');
    if (network.netmask === undefined) throw new KickstartValueError(at('netmask'), 'bootProto static needs netmask');
    words.push(
      option('ip', check('ip', network.ip), at('ip')),
      option('netmask', check('netmask', network.netmask), at('netmask')),
    );
  }
  if (network.gateway !== undefined) words.push(option('gateway', check('gateway', network.gateway), at('gateway')));
  const nameservers = (network.nameservers ?? []).map((server, i) => {
    field(server, `${at('nameservers')}[${i}]`, ['network', 'nameservers', 'items']);
    return word(server, `${at('nameservers')}[${i}]`);
  });
  if (nameservers.length > 0) words.push(option('nameserver', nameservers.join(','), at('nameservers')));
  if (network.hostname !== undefined)
    words.push(option('hostname', check('hostname', network.hostname), at('hostname')));
  return command('network', ...words, '--activate');
}

function rootpwLine(spec: InstallProfileSpec, passwords: ResolvedPasswords): string {
  const path = 'spec.rootPassword.secretKeyRef';
  if (!spec.rootPassword?.secretKeyRef) return command('rootpw', '--lock');
  return command('rootpw', '--iscrypted', hashWord(passwords.root, path));
}

function userLine(
  user: NonNullable<InstallProfileSpec['users']>[number],
  hash: string | undefined,
  path: string,
): string {
  const name = field(user.name, `${path}.name`, ['users', 'items', 'name']);
  if (name === 'root')
    throw new KickstartValueError(
      `${path}.name`,
      'root is configured with spec.rootPassword and spec.rootSSHAuthorizedKeys, not as a user',
    );
  const words = [option('name', name, `${path}.name`)];
  const groups = (user.groups ?? []).map((group, i) =>
    word(field(group, `${path}.groups[${i}]`, ['users', 'items', 'groups', 'items']), `${path}.groups[${i}]`),
  );
  if (groups.length > 0) words.push(option('groups', groups.join(','), `${path}.groups`));
  if (user.passwordSecretRef) words.push('--iscrypted', `--password=${hashWord(hash, `${path}.passwordSecretRef`)}`);
  return command('user', ...words);
}

/** `sshkey` for root (userPath undefined) or for the user whose name is at userPath. */
function sshkeyLine(username: string, key: string, path: string, userPath?: string): string {
  const name = userPath === undefined ? 'root' : field(username, userPath, ['users', 'items', 'name']);
  const checked = field(
    key,
    path,
    userPath === undefined ? ['rootSSHAuthorizedKeys', 'items'] : ['users', 'items', 'sshAuthorizedKeys', 'items'],
  );
  return command('sshkey', option('username', name, userPath ?? path), quoted(checked, path));
}

/**
 * The installed system's bootloader. Its kernel arguments are the console= arguments of
 * spec.boot.extraArgs: a guest installed over a serial console is managed over one (virsh
 * console) afterwards too. The other installer arguments (inst.*) mean nothing to it.
 */
function bootloaderLine(extraArgs: string | undefined): string {
  const path = 'spec.boot.extraArgs';
  const args = extraArgs === undefined ? '' : field(extraArgs, path, ['boot', 'extraArgs']);
  const consoles = args.split(' ').filter((arg) => arg.startsWith('console='));
  for (const arg of consoles) word(arg, path);
  return consoles.length === 0
    ? command('bootloader', '--location=mbr')
    : command('bootloader', '--location=mbr', option('append', consoles.join(' '), path, 'quoted'));
}

function partitioningLines(partitioning: InstallProfileSpec['partitioning']): string[] {
  const lines: string[] = [];
  if (partitioning.clearAll ?? true) lines.push(command('zerombr'), command('clearpart', '--all', '--initlabel'));
  else lines.push(command('clearpart', '--none'));
  const parts = partitioning.parts ?? [];
  if ((partitioning.mode ?? 'auto') === 'auto') {
    if (parts.length > 0)
      throw new KickstartValueError(
        'spec.partitioning.parts',
        'mode auto lays out the disk itself: remove parts, or set mode to manual',
      );
    lines.push(command('autopart', '--type=lvm'));
    return lines;
  }
  if (parts.length === 0)
    throw new KickstartValueError('spec.partitioning.parts', 'mode manual needs at least one partition in parts');
  parts.forEach((part, i) => lines.push(partLine(part, `spec.partitioning.parts[${i}]`)));
  return lines;
}

function partLine(part: NonNullable<InstallProfileSpec['partitioning']['parts']>[number], path: string): string {
  const schema = ['partitioning', 'parts', 'items'];
  const mountPoint = word(
    field(part.mountPoint, `${path}.mountPoint`, [...schema, 'mountPoint']),
    `${path}.mountPoint`,
  );
  const fsType = field(part.fsType, `${path}.fsType`, [...schema, 'fsType']);
  if ((fsType === 'swap') !== (mountPoint === 'swap') || (fsType === 'biosboot') !== (mountPoint === 'biosboot')) {
    throw new KickstartValueError(
      `${path}.fsType`,
      'swap and biosboot partitions need the same word as mountPoint and fsType (e.g. mountPoint: swap, fsType: swap)',
    );
  }
  // Anaconda makes an EFI system partition only for fstype efi; vfat would be a plain FAT partition.
  const fstype = mountPoint === '/boot/efi' && fsType === 'vfat' ? 'efi' : fsType;
  const words = [
    mountPoint,
    option('fstype', fstype, `${path}.fsType`),
    `--size=${mebibytes(part.size, `${path}.size`)}`,
  ];
  if (part.grow) words.push('--grow');
  return command('part', ...words);
}

function packagesSection(packages: string[]): string[] {
  const entries = packages.map((entry, i) => {
    const path = `spec.packages[${i}]`;
    field(entry, path, ['packages', 'items']);
    // The schema's pattern, restated here: a name, @group, @^environment, or -exclusion of one.
    if (!/^-?(@\^?)?[A-Za-z0-9][A-Za-z0-9._+:*-]*$/.test(entry)) {
      throw new KickstartValueError(
        path,
        `${JSON.stringify(entry)} is not a package, @group or -exclusion (no spaces, '%' or newlines)`,
      );
    }
    return entry;
  });
  // An empty section installs the @core group only; without one Anaconda would pick the
  // distribution's default environment (a desktop, on some).
  return ['', '%packages', ...entries, '%end'];
}

function postSection(post: NonNullable<InstallProfileSpec['post']>): string[] {
  const interpreter = post.interpreter ?? '/bin/sh';
  field(interpreter, 'spec.post.interpreter', ['post', 'interpreter']);
  const header =
    interpreter === '/bin/sh' ? '%post' : `%post ${option('interpreter', interpreter, 'spec.post.interpreter')}`;
  const body = scriptBody(post.script, 'spec.post.script');
  return ['', header, `${body}%end`];
}

// ---------------------------------------------------------------------------------------------
// Checks

/** A crypt hash as one word; a missing one is a problem of the reference it should come from. */
function hashWord(hash: string | undefined, path: string): string {
  if (hash === undefined)
    throw new KickstartValueError(path, 'no password hash was resolved from the Secret this names');
  if (!isCryptHash(hash))
    throw new KickstartValueError(path, 'the Secret this names holds no crypt hash in a format Kickstart accepts');
  return word(hash, path);
}

type SchemaNode = {
  pattern?: string;
  maxLength?: number;
  enum?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
};

/** The spec schema's node at `segments` (property names, 'items' for list entries). */
function schemaNode(segments: string[]): SchemaNode {
  let node = InstallProfileSpecSchema as unknown as SchemaNode;
  for (const segment of segments) {
    const next = segment === 'items' ? node.items : node.properties?.[segment];
    if (!next) throw new Error(`no schema node spec.${segments.join('.')}`);
    node = next;
  }
  return node;
}

/** `value` checked against its schema node's type, enum, length and pattern, with the schema's messages. */
function field(value: unknown, path: string, segments: string[]): string {
  if (typeof value !== 'string') throw new KickstartValueError(path, 'must be a string');
  const node = schemaNode(segments);
  if (node.enum && !node.enum.includes(value)) {
    throw new KickstartValueError(
      path,
      `${JSON.stringify(value)} is not one of ${node.enum.map((v) => JSON.stringify(v)).join(', ')}`,
    );
  }
  if (node.maxLength !== undefined && value.length > node.maxLength) {
    throw new KickstartValueError(path, `must be at most ${node.maxLength} characters long (got ${value.length})`);
  }
  if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(value)) {
    throw new KickstartValueError(
      path,
      patternHint(node.pattern)?.(value) ?? `${JSON.stringify(value)} does not match ${node.pattern}`,
    );
  }
  return value;
}

const MiB = 1n << 20n;

/** A size quantity in whole MiB, rounded down; at least 1. */
function mebibytes(size: string, path: string): string {
  field(size, path, ['partitioning', 'parts', 'items', 'size']);
  const q = parseQuantity(size);
  if (!q || q.negative) throw new KickstartValueError(path, `${JSON.stringify(size)} is not a size (use e.g. 20Gi)`);
  let numerator = q.digits;
  let denominator = MiB;
  if (q.exp10 >= 0) numerator *= 10n ** BigInt(q.exp10);
  else denominator *= 10n ** BigInt(-q.exp10);
  if (q.exp2 >= 0) numerator *= 2n ** BigInt(q.exp2);
  else denominator *= 2n ** BigInt(-q.exp2);
  const mib = numerator / denominator;
  if (mib < 1n) throw new KickstartValueError(path, 'size must be at least 1Mi');
  return mib.toString();
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
