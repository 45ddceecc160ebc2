// An InstallProfile's rendered Kickstart, as the person may see it: the profile and its Secrets
// are read with their token (the renderer of `virtfleet ks render` and the controller), so a
// person who may not read the Secrets gets the problems instead of the file. The file carries
// only crypt(3) hashes of the passwords (src/provisioning/passwords.ts refuses anything else),
// never a plain secret.
import { INSTALL_PROFILE } from '../controllers/installprofile.js';
import { SECRET } from '../controllers/host-credentials.js';
import type { InstallProfileSpec } from '../api/installprofile.js';
import { renderProfile } from '../provisioning/profile.js';
import type { SecretLookup, SecretRecord } from '../provisioning/profile-secrets.js';
import { resourcePath } from '../runtime/kube-client.js';
import { WebError } from './http.js';
import { kubeError, type UserKube } from './kube.js';

export type KickstartView =
  | { ok: true; text: string; hash: string }
  | { ok: false; problems: { field: string; kind: string; message: string }[] };

export async function kickstartOf(
  kube: UserKube,
  token: string,
  target: { namespace: string; name: string },
): Promise<KickstartView> {
  const { namespace, name } = target;
  const answer = await kube.call(token, 'GET', resourcePath(INSTALL_PROFILE, namespace, name));
  if (answer.status !== 200) throw kubeError(answer, { verb: 'get', resource: 'installprofiles', namespace, name });
  const spec = (answer.body as { spec: InstallProfileSpec }).spec;
  const lookup: SecretLookup = async (secret) => {
    const got = await kube.call(token, 'GET', resourcePath(SECRET, namespace, secret));
    if (got.status === 200) return { status: 'found', secret: got.body as SecretRecord };
    if (got.status === 404) return { status: 'not-found' };
    if (got.status === 403)
      return {
        status: 'forbidden',
        message: `you may not get secrets in namespace ${namespace}, so the console cannot render the Kickstart for you (its validity is in the profile's status)`,
      };
    throw new WebError(502, `reading Secret ${namespace}/${secret}: HTTP ${got.status}`);
  };
  const result = await renderProfile({ namespace, name, spec }, lookup);
  if (result.ok) return { ok: true, text: result.text, hash: result.hash };
  return {
    ok: false,
    problems: result.problems.map((problem) => ({ field: problem.path, kind: problem.kind, message: problem.message })),
  };
}
