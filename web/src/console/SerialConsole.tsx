// The VM detail page's Console tab: the VM's serial console in xterm.js, over a WebSocket to the
// console's server (src/web/console-proxy.ts), which opens the virtualmachines/console
// subresource with the person's own token. The first message carries the session's CSRF token;
// text frames back are the proxy's words (open, refused), binary frames the guest's output.
import '@xterm/xterm/css/xterm.css';
import { Terminal } from '@xterm/xterm';
import { createEffect, createResource, createSignal, onCleanup, onMount, Show } from 'solid-js';
import { canI, session } from '../api';
import { Failure, type FailureInfo } from '../components/Failure';
import { withStyleNonce } from './csp';

type State = 'connecting' | 'open' | 'closed';

/** Close codes of src/web/console-proxy.ts and src/apiserver/sessions.ts, in words. */
function closedWords(code: number, reason: string): string {
  if (code === 4001) return `${reason} (Take over to get it back)`;
  return reason ? `console closed (${code}): ${reason}` : `console closed (${code})`;
}

export function SerialConsole(props: { namespace: string; name: string; phase: string | undefined }) {
  const [allowed] = createResource(
    () => props.namespace,
    // The subresource's verb: a WebSocket is opened with GET (docs/access.md).
    (namespace) => canI('get', 'virtualmachines/console', namespace),
  );
  const [state, setState] = createSignal<State>('closed');
  const [note, setNote] = createSignal('');
  const [failure, setFailure] = createSignal<FailureInfo>();
  let screen: HTMLDivElement | undefined;
  let terminal: Terminal | undefined;
  let socket: WebSocket | undefined;
  const encoder = new TextEncoder();

  const connect = (force: boolean) => {
    socket?.close(1000, 'reconnecting');
    setFailure(undefined);
    setState('connecting');
    setNote(force ? 'taking the console over…' : 'connecting…');
    const path = `/api/namespaces/${encodeURIComponent(props.namespace)}/virtualmachines/${encodeURIComponent(props.name)}/console`;
    const ws = new WebSocket(`wss://${window.location.host}${path}`);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ csrf: session()?.csrfToken ?? '', force }));
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') {
        terminal?.write(new Uint8Array(event.data));
        return;
      }
      const said = JSON.parse(event.data) as { type: string; code?: number; message?: string; apiMessage?: string };
      if (said.type === 'open') {
        setState('open');
        setNote(`connected to ${props.name}; what you type goes to the guest`);
        terminal?.focus();
      } else if (said.type === 'refused') {
        setFailure({
          code: said.code ?? 0,
          message: said.message ?? 'refused',
          apiMessage: said.code === 403 ? said.apiMessage : undefined,
        });
      }
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      setState('closed');
      setNote(closedWords(event.code, event.reason));
    };
  };

  onMount(() => {
    terminal = new Terminal({
      cols: 100,
      rows: 24,
      fontSize: 14,
      scrollback: 1000,
      convertEol: false,
      theme: { background: '#101418', foreground: '#e6e9ec', cursor: '#6cb6ff' },
    });
    const opened = terminal;
    const where = screen;
    if (where) withStyleNonce(() => opened.open(where));
    opened.onData((data) => {
      if (socket?.readyState === WebSocket.OPEN && state() === 'open') socket.send(encoder.encode(data));
    });
  });
  onCleanup(() => {
    const ws = socket;
    socket = undefined;
    ws?.close(1000, 'page left');
    terminal?.dispose();
  });

  // Connect once the access review said yes (and again when asked).
  let started = false;
  createEffect(() => {
    if (allowed() === true && !started) {
      started = true;
      connect(false);
    }
  });

  return (
    <section aria-label="serial console" class="serial-console" data-state={state()}>
      <Show
        when={allowed() !== false}
        fallback={
          <Failure
            failure={{
              code: 403,
              message: `you may not get virtualmachines/console "${props.name}" in namespace ${props.namespace}`,
            }}
          />
        }
      >
        <p class="console-bar">
          <span role="status" data-console-state={state()}>
            {note()}
          </span>{' '}
          <Show when={props.phase && props.phase !== 'Running' && state() !== 'open'}>
            <span>(the VM is {props.phase}: its console opens once it runs)</span>
          </Show>
          <Show when={state() === 'closed'}>
            <button type="button" onClick={() => connect(false)}>
              Connect
            </button>
            <button type="button" onClick={() => connect(true)}>
              Take over
            </button>
          </Show>
          <Show when={state() === 'open'}>
            <button type="button" onClick={() => socket?.close(1000, 'closed by the person')}>
              Disconnect
            </button>
          </Show>
        </p>
        <Failure failure={failure()} />
      </Show>
      <div class="terminal" ref={(element) => (screen = element)} />
    </section>
  );
}
