// Install profiles: each profile's OS, validity (its Valid condition, written by the controller)
// and, on request, its rendered Kickstart, rendered by the console's server with the person's own
// token: the file has only crypt(3) password hashes; someone who may not read the profile's
// Secrets is told so and sees the validity only.
import { createSignal, For, Show } from 'solid-js';
import { failureOf, kickstart, type KickstartView } from '../api';
import { Failure, type FailureInfo } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { navigate } from '../router';
import { createWatch, keyOf, type KubeObject } from '../watch';

function valid(profile: KubeObject): { status: string; reason?: string; message?: string } {
  const condition = (
    (profile.status?.conditions ?? []) as { type: string; status: string; reason?: string; message?: string }[]
  ).find((c) => c.type === 'Valid');
  return condition ?? { status: 'Unknown', message: 'not checked by the controller yet' };
}

function Kickstart(props: { profile: KubeObject }) {
  const [view, setView] = createSignal<KickstartView>();
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [busy, setBusy] = createSignal(false);
  const show = async () => {
    setBusy(true);
    setFailure(undefined);
    try {
      setView(await kickstart(props.profile.metadata.namespace ?? '', props.profile.metadata.name));
    } catch (error) {
      setFailure(failureOf(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="kickstart-view">
      <button
        type="button"
        disabled={busy()}
        aria-label={`Show Kickstart of ${props.profile.metadata.name}`}
        onClick={() => void show()}
      >
        Show Kickstart
      </button>
      <Failure failure={failure()} />
      <Show when={view()}>
        {(current) => (
          <Show
            when={current().ok ? (current() as { text: string; hash: string }) : undefined}
            fallback={
              <ul class="problems" data-kickstart="problems">
                <For each={(current() as { problems: { field: string; message: string }[] }).problems}>
                  {(problem) => (
                    <li>
                      <code>{problem.field || '(profile)'}</code>: {problem.message}
                    </li>
                  )}
                </For>
              </ul>
            }
          >
            {(rendered) => (
              <>
                <p class="hint">SHA-256 {rendered().hash}; passwords appear only as crypt hashes.</p>
                <pre class="kickstart" data-kickstart="text" tabIndex={0} aria-label="rendered Kickstart">
                  {rendered().text}
                </pre>
              </>
            )}
          </Show>
        )}
      </Show>
    </div>
  );
}

export function Profiles(props: { namespace: string }) {
  const profiles = createWatch('installprofiles', props.namespace);
  const [namespaceInput, setNamespaceInput] = createSignal(props.namespace);
  const sorted = () => [...profiles.items()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  return (
    <main>
      <h1>
        Install profiles <LiveState state={profiles.state()} />
      </h1>
      <form
        class="filters"
        aria-label="filters"
        onSubmit={(event) => {
          event.preventDefault();
          const ns = namespaceInput().trim();
          navigate(ns ? `/profiles?namespace=${encodeURIComponent(ns)}` : '/profiles');
        }}
      >
        <label>
          Namespace
          <input
            name="namespace"
            placeholder="all namespaces"
            value={namespaceInput()}
            onInput={(event) => setNamespaceInput(event.currentTarget.value)}
          />
        </label>
        <button type="submit">Show</button>
      </form>
      <Failure failure={profiles.failure()} />
      <For each={sorted()} fallback={<p>No InstallProfiles{props.namespace ? ` in ${props.namespace}` : ''}.</p>}>
        {(profile) => (
          <section class="profile" aria-label={`profile ${keyOf(profile)}`} data-profile={keyOf(profile)}>
            <h2>
              {profile.metadata.namespace}/{profile.metadata.name}
            </h2>
            <dl class="summary">
              <dt>OS</dt>
              <dd>
                {profile.spec?.os?.name} {profile.spec?.os?.version} ({profile.spec?.os?.family ?? 'rhel'})
              </dd>
              <dt>Boot</dt>
              <dd>{profile.spec?.boot?.method ?? 'pxe'}</dd>
              <dt>Valid</dt>
              <dd data-field="valid">
                {valid(profile).status}
                {valid(profile).reason ? ` ${valid(profile).reason}` : ''}
                {valid(profile).message ? `: ${valid(profile).message}` : ''}
              </dd>
            </dl>
            <Kickstart profile={profile} />
          </section>
        )}
      </For>
    </main>
  );
}
