// The VM detail page's VNC tab: noVNC's RFB client on a canvas, over the same kind of WebSocket
// as the serial console (src/web/console-proxy.ts, subresource vnc): the first message carries
// the session's CSRF token, the server answers {"type": "open"} once virtualmachines/vnc is
// open with the person's token, and the socket is then handed to RFB, which speaks RFB on it.
import RFB from '@novnc/novnc';
import { createEffect, createResource, createSignal, onCleanup, Show } from 'solid-js';
import { canI, session } from '../api';
import { Failure, type FailureInfo } from '../components/Failure';

type State = 'connecting' | 'open' | 'closed';

export function VncViewer(props: { namespace: string; name: string; graphics: boolean }) {
  const [allowed] = createResource(
    () => props.namespace,
    (namespace) => canI('get', 'virtualmachines/vnc', namespace),
  );
  const [state, setState] = createSignal<State>('closed');
  const [note, setNote] = createSignal('');
  const [failure, setFailure] = createSignal<FailureInfo>();
  let screen: HTMLDivElement | undefined;
  let socket: WebSocket | undefined;
  let rfb: RFB | undefined;

  const connect = () => {
    rfb?.disconnect();
    socket?.close(1000, 'reconnecting');
    setFailure(undefined);
    setState('connecting');
    setNote('connecting…');
    const path = `/api/namespaces/${encodeURIComponent(props.namespace)}/virtualmachines/${encodeURIComponent(props.name)}/vnc`;
    const ws = new WebSocket(`wss://${window.location.host}${path}`);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ csrf: session()?.csrfToken ?? '', force: false }));
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') return;
      const said = JSON.parse(event.data) as { type: string; code?: number; message?: string; apiMessage?: string };
      if (said.type === 'refused') {
        setFailure({
          code: said.code ?? 0,
          message: said.message ?? 'refused',
          apiMessage: said.code === 403 ? said.apiMessage : undefined,
        });
      } else if (said.type === 'open' && screen) {
        // From here on the socket is RFB's: it sets its own handlers.
        ws.onmessage = null;
        ws.onclose = null;
        const client = new RFB(screen, ws);
        client.scaleViewport = true;
        client.addEventListener('connect', () => {
          setState('open');
          setNote(`connected to ${props.name}'s display`);
        });
        client.addEventListener('disconnect', (event) => {
          if (rfb !== client) return;
          setState('closed');
          const clean = (event as CustomEvent<{ clean?: boolean }>).detail?.clean;
          setNote(clean ? 'VNC closed' : 'VNC closed: the connection ended (the VM stopped or moved?)');
        });
        rfb = client;
      }
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      setState('closed');
      setNote(event.reason ? `VNC closed (${event.code}): ${event.reason}` : `VNC closed (${event.code})`);
    };
  };

  let started = false;
  createEffect(() => {
    if (allowed() === true && props.graphics && !started) {
      started = true;
      connect();
    }
  });
  onCleanup(() => {
    const client = rfb;
    rfb = undefined;
    client?.disconnect();
    socket?.close(1000, 'page left');
  });

  return (
    <section aria-label="VNC" class="vnc" data-state={state()}>
      <Show
        when={allowed() !== false}
        fallback={
          <Failure
            failure={{
              code: 403,
              message: `you may not get virtualmachines/vnc "${props.name}" in namespace ${props.namespace}`,
            }}
          />
        }
      >
        <Show
          when={props.graphics}
          fallback={<p role="status">This VM has no display: add spec.graphics (VNC) to its spec in the YAML tab.</p>}
        >
          <p class="console-bar">
            <span role="status" data-vnc-state={state()}>
              {note()}
            </span>{' '}
            <Show when={state() === 'closed'}>
              <button type="button" onClick={() => connect()}>
                Connect
              </button>
            </Show>
            <Show when={state() === 'open'}>
              <button type="button" onClick={() => rfb?.disconnect()}>
                Disconnect
              </button>
            </Show>
          </p>
          <Failure failure={failure()} />
        </Show>
      </Show>
      <div class="vnc-screen" ref={(element) => (screen = element)} />
    </section>
  );
}
