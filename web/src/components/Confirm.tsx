// A confirmation before a change that is hard to undo (delete, maintenance): the browser's modal
// <dialog>, so focus stays inside it and Escape cancels.
import { createEffect, type JSX } from 'solid-js';

export function Confirm(props: {
  open: boolean;
  title: string;
  confirm: string;
  children: JSX.Element;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  // eslint-disable-next-line no-unassigned-vars
  let dialog: HTMLDialogElement | undefined;
  createEffect(() => {
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  });
  return (
    <dialog ref={dialog} class="confirm" aria-label={props.title} onCancel={() => props.onCancel()}>
      <h2>{props.title}</h2>
      {props.children}
      <div class="confirm-buttons">
        <button type="button" class="danger" onClick={() => props.onConfirm()}>
          {props.confirm}
        </button>
        <button type="button" onClick={() => props.onCancel()} autofocus>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
