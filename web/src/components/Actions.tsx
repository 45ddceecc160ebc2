// Action buttons of one VM: shown only when the person may patch VMs in its namespace (a
// SelfSubjectAccessReview), sent as `virtfleet vm <action>` sends them (the action annotations),
// and the outcome shown: the request, then status.lastAction once the controller took it up.
// migrate offers the pool's ready hosts (other than the VM's own) or the scheduler's choice.
import { createResource, createSignal, For, Show } from 'solid-js';
import { canI, failureOf, vmAction } from '../api';
import type { KubeObject } from '../watch';
import { Failure, type FailureInfo } from './Failure';

export function Actions(props: { vm: KubeObject; actions: string[]; compact?: boolean; hosts?: string[] }) {
  const [allowed] = createResource(
    () => props.vm.metadata.namespace ?? '',
    (namespace) => canI('patch', 'virtualmachines', namespace),
  );
  const [asked, setAsked] = createSignal<{ action: string; id: string; to?: string }>();
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [busy, setBusy] = createSignal(false);
  const [to, setTo] = createSignal('');
  const run = async (action: string) => {
    setBusy(true);
    setFailure(undefined);
    try {
      const target = action === 'migrate' ? to() : undefined;
      setAsked(await vmAction(props.vm.metadata.namespace ?? '', props.vm.metadata.name, action, target));
    } catch (error) {
      setFailure(failureOf(error));
    } finally {
      setBusy(false);
    }
  };
  const outcome = () => {
    const request = asked();
    if (!request) return undefined;
    const last = props.vm.status?.lastAction as { id?: string; state?: string; message?: string } | undefined;
    const what = request.to ? `${request.action} to ${request.to}` : request.action;
    if (last?.id === request.id) return `${what}: ${last.state ?? ''}${last.message ? ` (${last.message})` : ''}`;
    return `asked to ${what}; waiting for the controller`;
  };
  const others = () => (props.hosts ?? []).filter((host) => host !== props.vm.status?.host);
  return (
    <div class="actions" data-allowed={allowed.loading ? 'pending' : String(allowed() === true)}>
      <Show when={allowed()}>
        <For each={props.actions.filter((action) => action !== 'migrate')}>
          {(action) => (
            <button
              type="button"
              disabled={busy()}
              data-action={action}
              aria-label={`${action} ${props.vm.metadata.name}`}
              onClick={() => void run(action)}
            >
              {action}
            </button>
          )}
        </For>
        <Show when={props.actions.includes('migrate')}>
          <span class="migrate">
            <label>
              to host{' '}
              <select name="migrate-to" value={to()} onChange={(event) => setTo(event.currentTarget.value)}>
                <option value="">the scheduler's choice</option>
                <For each={others()}>{(host) => <option value={host}>{host}</option>}</For>
              </select>
            </label>
            <button
              type="button"
              disabled={busy()}
              data-action="migrate"
              aria-label={`migrate ${props.vm.metadata.name}`}
              onClick={() => void run('migrate')}
            >
              migrate
            </button>
          </span>
        </Show>
      </Show>
      <Show when={!props.compact && outcome()}>
        <span class="outcome" role="status" data-outcome>
          {outcome()}
        </span>
      </Show>
      <Failure failure={failure()} />
    </div>
  );
}
