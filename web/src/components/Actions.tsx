// Action buttons of one VM: shown only when the person may patch VMs in its namespace (a
// SelfSubjectAccessReview), sent as `virtfleet vm <action>` sends them (the action annotations),
// and the outcome shown: the request, then status.lastAction once the controller took it up.
import { createResource, createSignal, For, Show } from 'solid-js';
import { ApiFailure, canI, vmAction } from '../api';
import type { KubeObject } from '../watch';
import { Failure, type FailureInfo } from './Failure';

export function Actions(props: { vm: KubeObject; actions: string[]; compact?: boolean }) {
  const [allowed] = createResource(
    () => props.vm.metadata.namespace ?? '',
    (namespace) => canI('patch', 'virtualmachines', namespace),
  );
  const [asked, setAsked] = createSignal<{ action: string; id: string }>();
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [busy, setBusy] = createSignal(false);
  const run = async (action: string) => {
    setBusy(true);
    setFailure(undefined);
    try {
      setAsked(await vmAction(props.vm.metadata.namespace ?? '', props.vm.metadata.name, action));
    } catch (error) {
      const f = error instanceof ApiFailure ? error : new ApiFailure(0, String(error));
      setFailure({ code: f.code, message: f.message, apiMessage: f.apiMessage });
    } finally {
      setBusy(false);
    }
  };
  const outcome = () => {
    const request = asked();
    if (!request) return undefined;
    const last = props.vm.status?.lastAction as { id?: string; state?: string; message?: string } | undefined;
    if (last?.id === request.id)
      return `${request.action}: ${last.state ?? ''}${last.message ? ` (${last.message})` : ''}`;
    return `asked to ${request.action}; waiting for the controller`;
  };
  return (
    <div class="actions" data-allowed={allowed.loading ? 'pending' : String(allowed() === true)}>
      <Show when={allowed()}>
        <For each={props.actions}>
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
      </Show>
      <Show when={!props.compact && outcome()}>
        <span class="outcome" role="status">
          {outcome()}
        </span>
      </Show>
      <Failure failure={failure()} />
    </div>
  );
}
