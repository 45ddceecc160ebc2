// Deleting a VM, as `virtfleet vm delete` (no --force): asked for in a confirmation that says what
// happens; offered only when the person may delete VMs in the namespace.
import { createResource, createSignal, Show } from 'solid-js';
import { canI, deleteVm, failureOf } from '../api';
import type { KubeObject } from '../watch';
import { Confirm } from './Confirm';
import { Failure, type FailureInfo } from './Failure';

export function DeleteVm(props: { vm: KubeObject }) {
  const namespace = () => props.vm.metadata.namespace ?? '';
  const [allowed] = createResource(namespace, (ns) => canI('delete', 'virtualmachines', ns));
  const [open, setOpen] = createSignal(false);
  const [asked, setAsked] = createSignal(false);
  const [failure, setFailure] = createSignal<FailureInfo>();
  const confirm = async () => {
    setOpen(false);
    setFailure(undefined);
    try {
      await deleteVm(namespace(), props.vm.metadata.name);
      setAsked(true);
    } catch (error) {
      setFailure(failureOf(error));
    }
  };
  return (
    <Show when={allowed()}>
      <div class="actions">
        <button
          type="button"
          class="danger"
          data-action="delete"
          disabled={asked() || !!props.vm.metadata.deletionTimestamp}
          onClick={() => setOpen(true)}
        >
          delete
        </button>
        <Show when={asked() || props.vm.metadata.deletionTimestamp}>
          <span class="outcome" role="status" data-outcome>
            deleting: the controller shuts the VM down, then removes its domain and volumes from{' '}
            {props.vm.status?.host ?? 'its host'}
          </span>
        </Show>
        <Failure failure={failure()} />
      </div>
      <Confirm
        open={open()}
        title={`Delete VM ${props.vm.metadata.name}?`}
        confirm="Delete"
        onConfirm={() => void confirm()}
        onCancel={() => setOpen(false)}
      >
        <p>
          VirtualMachine {props.vm.metadata.name} in namespace {namespace()} is shut down (destroyed after its grace
          period), its domain undefined and its volumes deleted (except those with retain). This cannot be undone.
        </p>
      </Confirm>
    </Show>
  );
}
