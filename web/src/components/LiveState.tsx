// Whether what a page shows is live: while a watch reconnects, the page says its data may be stale.
import { Match, Switch } from 'solid-js';
import type { WatchState } from '../watch';

export function LiveState(props: { state: WatchState }) {
  return (
    <span class={`live-state ${props.state}`} role="status" data-state={props.state}>
      <Switch>
        <Match when={props.state === 'live'}>live</Match>
        <Match when={props.state === 'connecting'}>loading…</Match>
        <Match when={props.state === 'reconnecting'}>reconnecting: what is shown may be stale</Match>
        <Match when={props.state === 'failed'}>not live</Match>
      </Switch>
    </span>
  );
}
