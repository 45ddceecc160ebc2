// Log in with a bearer token: a ServiceAccount token (`kubectl create token`) or an OIDC ID
// token. The server checks it (TokenReview) and keeps it; the page never stores it.
import { createSignal, Show } from 'solid-js';
import { ApiFailure, login } from '../api';

export function Login() {
  const [token, setToken] = createSignal('');
  const [error, setError] = createSignal<string>();
  const [busy, setBusy] = createSignal(false);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await login(token());
      setToken('');
    } catch (failure) {
      setError(failure instanceof ApiFailure ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>virtfleet</h1>
      <form onSubmit={(event) => void submit(event)}>
        <label for="token">Bearer token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          autocomplete="off"
          spellcheck={false}
          required
          value={token()}
          onInput={(event) => setToken(event.currentTarget.value)}
        />
        <p class="hint">
          A ServiceAccount token (<code>kubectl create token NAME</code>) or an OIDC ID token. The console acts with it,
          so it can do what <code>kubectl --token</code> can.
        </p>
        <button type="submit" disabled={busy() || !token().trim()}>
          Log in
        </button>
        <Show when={error()}>
          <div class="failure" role="alert">
            {error()}
          </div>
        </Show>
      </form>
    </main>
  );
}
