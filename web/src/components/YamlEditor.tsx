// The VM's YAML, editable: "Check" runs the same checks as `virtfleet validate` and the API
// server's dry run (nothing changes); "Apply" runs them again and applies only if both pass.
// Problems are listed with their field path. A change by someone else to spec, labels or
// annotations since the text was loaded is refused (the API server's conflict), not overwritten.
import { createResource, createSignal, For, Show } from 'solid-js';
import { applyVmYaml, canI, failureOf, vmYaml, type ApplyAnswer } from '../api';
import { Failure, type FailureInfo } from './Failure';

export function YamlEditor(props: { namespace: string; name: string }) {
  const [allowed] = createResource(() => canI('update', 'virtualmachines', props.namespace));
  const [text, setText] = createSignal('');
  // The text as loaded: the server applies the edit on top of the current version only when
  // nobody changed spec, labels or annotations since (the controller's status writes do not count).
  const [base, setBase] = createSignal('');
  const [answer, setAnswer] = createSignal<ApplyAnswer>();
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [busy, setBusy] = createSignal(false);
  const load = async () => {
    setFailure(undefined);
    setAnswer(undefined);
    try {
      const loaded = (await vmYaml(props.namespace, props.name)).yaml;
      setText(loaded);
      setBase(loaded);
    } catch (error) {
      setFailure(failureOf(error));
    }
  };
  void load();
  const send = async (apply: boolean) => {
    setBusy(true);
    setFailure(undefined);
    try {
      const result = await applyVmYaml(props.namespace, props.name, text(), base(), apply);
      setAnswer(result);
      // Applied: the text is reloaded with the new resourceVersion, ready for the next edit.
      if (result.applied) {
        const fresh = await vmYaml(props.namespace, props.name);
        setText(fresh.yaml);
        setBase(fresh.yaml);
      }
    } catch (error) {
      setFailure(failureOf(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-label="YAML" class="yaml">
      <label for="vm-yaml">VirtualMachine {props.name} as YAML</label>
      <textarea
        id="vm-yaml"
        spellcheck={false}
        rows={24}
        value={text()}
        readOnly={!allowed()}
        onInput={(event) => {
          setText(event.currentTarget.value);
          setAnswer(undefined);
        }}
      />
      <div class="actions">
        <Show when={allowed()}>
          <button type="button" disabled={busy()} onClick={() => void send(false)}>
            Check (dry run)
          </button>
          <button type="button" disabled={busy()} onClick={() => void send(true)}>
            Apply
          </button>
        </Show>
        <button type="button" disabled={busy()} onClick={() => void load()}>
          Reload
        </button>
      </div>
      <Failure failure={failure()} />
      <Show when={answer()}>
        {(result) => (
          <div
            role="status"
            data-yaml-result={result().applied ? 'applied' : result().problems.length ? 'problems' : 'ok'}
          >
            <Show when={result().problems.length === 0}>
              <p>{result().message}</p>
            </Show>
            <Show when={result().problems.length > 0}>
              <p class="failure-text">{result().message ?? 'not applied: fix these fields'}</p>
              <ul class="problems">
                <For each={result().problems}>
                  {(problem) => (
                    <li data-field={problem.field}>
                      <code>{problem.field || '(document)'}</code>: {problem.message}
                    </li>
                  )}
                </For>
              </ul>
            </Show>
          </div>
        )}
      </Show>
    </section>
  );
}
