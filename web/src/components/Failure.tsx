// A refusal or error as the server worded it: a 403 reads "you may not <verb> <resource>",
// with the Kubernetes API's own message beneath.
import { Show } from 'solid-js';

export interface FailureInfo {
  code: number;
  message: string;
  apiMessage?: string | undefined;
}

export function Failure(props: { failure: FailureInfo | undefined }) {
  return (
    <Show when={props.failure}>
      {(failure) => (
        <div class="failure" role="alert" data-code={failure().code}>
          <strong>{failure().message}</strong>
          <Show when={failure().apiMessage}>
            <div class="api-message">Kubernetes API: {failure().apiMessage}</div>
          </Show>
        </div>
      )}
    </Show>
  );
}
