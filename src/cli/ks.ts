// `virtfleet ks render`: the Kickstart file an InstallProfile renders to, for review (a GitOps
// pipeline, a pull request) before any VM is installed from it.
//
//   virtfleet ks render PROFILE [-n NS] [--kubeconfig FILE]
//       the profile and its Secrets from the cluster, with your credentials; the output is the
//       file the controller renders (same password hashes, same sha256 as status.renderedHash)
//   virtfleet ks render [PROFILE] --file profile.yaml [--secret secret.yaml ...]
//       offline, for CI without a cluster: the profile checked as `virtfleet validate` checks it,
//       Secrets from files (data or stringData; Secrets in the profile's file count too)
//
// The Kickstart goes to stdout, a summary line (and problems) to stderr. Passwords are only ever
// printed as crypt hashes; a plaintext password in a Secret is hashed (SHA-512 crypt) first.
// Exit status: 0 rendered, 1 the profile does not render (one `FIELD: MESSAGE` line per
// problem), 2 usage error (no such file, no such profile, a YAML syntax error).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import type { InstallProfileSpec } from '../api/installprofile.js';
import { validateText } from '../api/validate.js';
import { INSTALL_PROFILE, secretLookup, type ProfileObject } from '../controllers/installprofile.js';
import type { SecretLookup, SecretRecord } from '../provisioning/profile-secrets.js';
import { formatProblems, renderProfile } from '../provisioning/profile.js';
import { checkNamespace, checkObjectName, InvalidNameError, isNotFound, KubeClient } from '../runtime/kube-client.js';
import { KubeConfigError, loadKubeConfig } from './controller.js';
import { EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, formatProblem, type Output } from './validate.js';

export interface RenderFlags {
  namespace?: string;
  kubeconfig?: string;
  file?: string;
  secret?: string[];
}

export interface RenderOutput extends Output {
  /** The Kickstart text, written as it is. */
  write: (text: string) => void;
}

const processOutput: RenderOutput = {
  write: (text) => process.stdout.write(text),
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

class UsageError extends Error {}

export function ksCommand(): Command {
  const ks = new Command('ks').description('Kickstart files of InstallProfiles');
  ks.addCommand(
    new Command('render')
      .description(
        'print the Kickstart file an InstallProfile renders to (passwords as crypt hashes only), for review before installs',
      )
      .argument('[profile]', 'the InstallProfile (with --file: which one, when the file holds several)')
      .option(
        '-n, --namespace <namespace>',
        "namespace of the profile and its Secrets (default: the kubeconfig context's, else default; with --file: the profile's, else default)",
      )
      .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
      .option(
        '-f, --file <path>',
        'render the InstallProfile in this YAML file instead of one from the cluster (no cluster needed)',
      )
      .option(
        '--secret <path>',
        'with --file: a YAML file of Secrets the profile names (repeatable)',
        (path: string, all: string[] = []) => [...all, path],
      )
      .addHelpText(
        'after',
        [
          '',
          'The Kickstart goes to stdout; a summary (lines, sha256) or the problems go to stderr.',
          "From the cluster, the sha256 is compared with the profile's status.renderedHash.",
          'Exit status: 0 rendered, 1 the profile does not render, 2 usage error.',
        ].join('\n'),
      )
      .action(async (profile: string | undefined, flags: RenderFlags) => {
        process.exitCode = await runRender(profile, flags);
      }),
  );
  return ks;
}

/** Renders and prints; returns the exit status. */
export async function runRender(
  profileName: string | undefined,
  flags: RenderFlags,
  output: RenderOutput = processOutput,
): Promise<number> {
  try {
    return flags.file
      ? await renderFromFiles(profileName, flags, output)
      : await renderFromCluster(profileName, flags, output);
  } catch (error) {
    output.err(`virtfleet ks render: ${error instanceof Error ? error.message : String(error)}`);
    return error instanceof UsageError || error instanceof InvalidNameError ? EXIT_USAGE : EXIT_PROBLEMS;
  }
}

async function renderFromCluster(name: string | undefined, flags: RenderFlags, output: RenderOutput): Promise<number> {
  if (!name) throw new UsageError('name the InstallProfile to render, or give --file');
  if (flags.secret)
    throw new UsageError("--secret goes with --file; from the cluster the profile's own Secrets are read");
  checkObjectName(name);
  if (flags.namespace !== undefined) checkNamespace(flags.namespace);
  const config = (() => {
    try {
      return loadKubeConfig(flags.kubeconfig);
    } catch (error) {
      if (!(error instanceof KubeConfigError)) throw error;
      throw new UsageError(
        `${error.message} Or render the InstallProfile from its YAML file, without a cluster: virtfleet ks render --file PROFILE.yaml`,
      );
    }
  })();
  const namespace = flags.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
  checkNamespace(namespace);
  const client = new KubeClient(config, 'virtfleet-cli');
  let profile: ProfileObject;
  try {
    profile = await client.get<ProfileObject>(INSTALL_PROFILE, namespace, name);
  } catch (error) {
    if (isNotFound(error)) throw new UsageError(`installprofile ${name} not found in namespace ${namespace}`);
    throw error;
  }
  const lookup = secretLookup(
    client,
    namespace,
    (ns) => `your credentials may not get Secrets in namespace ${ns} (ks render reads the profile's Secrets as you)`,
  );
  const hash = await render(namespace, name, profile.spec, lookup, output);
  if (hash === undefined) return EXIT_PROBLEMS;
  const stored = profile.status?.renderedHash;
  if (stored === undefined)
    output.err('  (status.renderedHash is not set: the controller has not rendered this profile, or found it invalid)');
  else if (stored !== hash)
    output.err(
      `  (differs from status.renderedHash ${stored}: the profile or a Secret changed since the controller last rendered it)`,
    );
  else output.err('  (the same as status.renderedHash)');
  return EXIT_OK;
}

/** Prints the Kickstart (stdout) and a summary, or the problems (stderr); returns the hash when it rendered. */
async function render(
  namespace: string,
  name: string,
  spec: InstallProfileSpec,
  lookup: SecretLookup,
  output: RenderOutput,
): Promise<string | undefined> {
  const result = await renderProfile({ namespace, name, spec }, lookup);
  if (!result.ok) {
    output.err(`virtfleet ks render: InstallProfile ${namespace}/${name} does not render:`);
    for (const line of formatProblems(result.problems)) output.err(`  ${line}`);
    return undefined;
  }
  output.write(result.text);
  output.err(
    `virtfleet ks render: InstallProfile ${namespace}/${name}: ${result.text.split('\n').length - 1} lines, ${result.hash}`,
  );
  return result.hash;
}

interface FileObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; resourceVersion?: unknown };
  spec?: unknown;
  data?: unknown;
  stringData?: unknown;
}

async function renderFromFiles(name: string | undefined, flags: RenderFlags, output: RenderOutput): Promise<number> {
  const file = flags.file!;
  const objects = readObjects(file);
  const profiles = objects.filter((o) => o.kind === 'InstallProfile');
  const chosen = name === undefined ? profiles : profiles.filter((o) => o.metadata?.name === name);
  const names = profiles.map((o) => String(o.metadata?.name)).join(', ');
  if (chosen.length === 0)
    throw new UsageError(
      name === undefined
        ? `${file} holds no InstallProfile`
        : `${file} holds no InstallProfile ${name}${names ? ` (it holds: ${names})` : ''}`,
    );
  if (chosen.length > 1)
    throw new UsageError(`${file} holds several InstallProfiles (${names}); name the one to render`);
  const profile = chosen[0]!;
  const profileName = String(profile.metadata?.name ?? '');

  // The profile's own problems, as `virtfleet validate` reports them (with lines).
  const report = validateText(readFileSync(file, 'utf8'), file);
  const problems = report.problems.filter(
    (problem) => problem.object === `InstallProfile/${profileName}` || problem.object?.startsWith('document'),
  );
  if (problems.length > 0) {
    output.err(`virtfleet ks render: InstallProfile ${profileName} does not render:`);
    for (const problem of problems) output.err(`  ${formatProblem(problem)}`);
    return EXIT_PROBLEMS;
  }

  const namespace =
    flags.namespace ?? (typeof profile.metadata?.namespace === 'string' ? profile.metadata.namespace : 'default');
  const secrets = [...objects, ...(flags.secret ?? []).flatMap(readObjects)]
    .filter((o) => o.kind === 'Secret' && (o.metadata?.namespace === undefined || o.metadata.namespace === namespace))
    .map(toSecretRecord);
  const lookup: SecretLookup = async (secretName) => {
    const secret = secrets.find((s) => s.metadata?.name === secretName);
    return secret ? { status: 'found', secret } : { status: 'not-found' };
  };
  return (await render(namespace, profileName, profile.spec as InstallProfileSpec, lookup, output)) === undefined
    ? EXIT_PROBLEMS
    : EXIT_OK;
}

function readObjects(file: string): FileObject[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`${file}: no such file`);
  }
  const objects: FileObject[] = [];
  for (const document of parseAllDocuments(text, { version: '1.1' })) {
    if (document.errors.length > 0)
      throw new UsageError(`${file}: YAML syntax error: ${document.errors[0]!.message.split('\n')[0] ?? ''}`);
    const value: unknown = document.toJS();
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const object = value as FileObject & { items?: unknown };
    if (object.kind === 'List' && Array.isArray(object.items)) objects.push(...(object.items as FileObject[]));
    else objects.push(object);
  }
  return objects;
}

/** A Secret as the API server would store it: stringData merged into data, base64. */
function toSecretRecord(object: FileObject): SecretRecord {
  const metadata = object.metadata ?? {};
  const data: Record<string, string> = {};
  for (const field of ['data', 'stringData'] as const) {
    const values = object[field];
    if (values === undefined || values === null) continue;
    if (typeof values !== 'object' || Array.isArray(values))
      throw new UsageError(`Secret ${String(metadata.name)}: ${field} must be a mapping`);
    for (const [key, value] of Object.entries(values)) {
      // Messages name the key, never the value.
      if (typeof value !== 'string')
        throw new UsageError(`Secret ${String(metadata.name)}: ${field}.${key} must be a string (quote it in YAML)`);
      data[key] = field === 'data' ? value : Buffer.from(value, 'utf8').toString('base64');
    }
  }
  return {
    metadata: {
      ...(typeof metadata.name === 'string' ? { name: metadata.name } : {}),
      ...(typeof metadata.uid === 'string' ? { uid: metadata.uid } : {}),
      ...(typeof metadata.resourceVersion === 'string' ? { resourceVersion: metadata.resourceVersion } : {}),
    },
    data,
  };
}
