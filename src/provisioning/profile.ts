// An InstallProfile to its Kickstart file, Secrets included: what the controller reports in
// status and `virtfleet ks render` prints. The spec is checked first (a spec the schema refuses
// is not worth a Secret lookup), then the Secrets are read, then the file is rendered; the
// problems of all steps name field paths.
import { API_VERSION } from '../api/common.js';
import type { InstallProfileSpec } from '../api/installprofile.js';
import type { Problem } from '../api/problems.js';
import { validateObject, withDefaults } from '../api/validate.js';
import { renderKickstartText } from './kickstart.js';
import { resolvePasswords, type HashMemo, type SecretLookup, type SecretProblemKind } from './profile-secrets.js';

export interface ProfileProblem extends Problem {
  /** spec: the profile itself; the others: a Secret it names. */
  kind: 'spec' | SecretProblemKind;
}

export type ProfileRender =
  { ok: true; text: string; hash: string; secrets: string[] } | { ok: false; problems: ProfileProblem[] };

export interface ProfileInput {
  namespace: string;
  name: string;
  spec: InstallProfileSpec;
}

export async function renderProfile(
  profile: ProfileInput,
  lookup: SecretLookup,
  memo?: HashMemo,
): Promise<ProfileRender> {
  const object = {
    apiVersion: API_VERSION,
    kind: 'InstallProfile',
    metadata: { name: profile.name },
    spec: profile.spec,
  };
  const schemaProblems = validateObject(object).filter((problem) => problem.path.startsWith('spec'));
  if (schemaProblems.length > 0)
    return { ok: false, problems: schemaProblems.map((problem) => ({ ...problem, kind: 'spec' })) };
  const spec = withDefaults(object).spec;

  const resolution = await resolvePasswords(spec, profile.namespace, lookup, memo);
  const rendered = renderKickstartText({
    spec,
    passwords: resolution.passwords,
    profile: { namespace: profile.namespace, name: profile.name },
  });
  if (rendered.ok && resolution.problems.length === 0)
    return { ok: true, text: rendered.text, hash: rendered.hash, secrets: resolution.versions };

  // A reference whose Secret failed has no hash, so the renderer complains about it too: the
  // Secret's problem says more.
  const secretPaths = new Set(resolution.problems.map((problem) => problem.path));
  const renderProblems: ProfileProblem[] = rendered.ok
    ? []
    : rendered.problems
        .filter((problem) => !secretPaths.has(problem.path))
        .map((problem) => ({ ...problem, kind: 'spec' }));
  return { ok: false, problems: [...renderProblems, ...resolution.problems] };
}

/** Problems as one line each: `PATH: MESSAGE`. */
export function formatProblems(problems: readonly Problem[]): string[] {
  return problems.map((problem) => (problem.path ? `${problem.path}: ${problem.message}` : problem.message));
}
