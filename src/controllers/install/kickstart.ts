// Serving Kickstart: the installer of an installing VM fetches its file with its token; it is
// rendered at that moment from the profile and the profile's Secrets, and each fetch is an Event.
import type { KickstartAnswer } from '../../provisioning/install-server.js';
import { renderProfile } from '../../provisioning/profile.js';
import { isBeingDeleted } from '../../runtime/finalizers.js';
import { problemsMessage, secretLookup } from '../installprofile.js';
import { VM_EVENTS as E } from '../reasons.js';
import type { InstallKit } from './types.js';

/** The Kickstart of an installing VM, rendered now from its profile and the profile's Secrets. */
export async function serveKickstart(kit: InstallKit, uid: string, client: string): Promise<KickstartAnswer> {
  const session = kit.sessions.get(uid);
  const vm = session ? kit.options.vms.get(session.key) : undefined;
  if (!session || !vm || vm.metadata.uid !== uid || isBeingDeleted(vm) || !vm.spec.install) return { status: 'gone' };
  const namespace = vm.metadata.namespace ?? '';
  const name = vm.spec.install.profileRef.name;
  const profile = kit.options.profiles?.get(`${namespace}/${name}`);
  if (!profile) {
    kit.options.event(
      vm,
      'Warning',
      E.KickstartUnavailable,
      `the installer at ${client} asked for its Kickstart, but InstallProfile ${namespace}/${name} does not exist any more`,
    );
    return { status: 'unavailable' };
  }
  const result = await renderProfile(
    { namespace, name, spec: profile.spec },
    secretLookup(kit.options.client, namespace),
    kit.memo,
  );
  if (!result.ok) {
    kit.options.event(
      vm,
      'Warning',
      E.KickstartUnavailable,
      `the installer at ${client} asked for its Kickstart, but InstallProfile ${namespace}/${name} does not render: ${problemsMessage(result.problems)}`,
    );
    return { status: 'unavailable' };
  }
  kit.options.event(
    vm,
    'Normal',
    E.KickstartServed,
    `Kickstart of InstallProfile ${namespace}/${name} (${result.hash}) served to ${client}`,
  );
  return { status: 'ok', text: result.text };
}
