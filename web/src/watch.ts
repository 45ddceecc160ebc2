// A live collection from the server's SSE relay (src/web/watch-relay.ts): a snapshot, then
// changes. Changes arriving together are applied in one animation frame, so 1,000 VMs changing
// at once re-render once. `state` says whether what is shown is live or may be stale.
import { createSignal, onCleanup, type Accessor } from 'solid-js';
import { loadSession } from './api';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: any;
  status?: any;
  [key: string]: any;
}

export type WatchState = 'connecting' | 'live' | 'reconnecting' | 'failed';

export interface Watch<T extends KubeObject> {
  items: Accessor<T[]>;
  state: Accessor<WatchState>;
  failure: Accessor<{ code: number; message: string; apiMessage?: string } | undefined>;
}

export const keyOf = (object: KubeObject) => `${object.metadata.namespace ?? ''}/${object.metadata.name}`;

/** Watches `resource` (virtualmachines, hostpools, events) in `namespace` ('' = all), optionally one `name`. */
export function createWatch<T extends KubeObject>(resource: string, namespace = '', name = ''): Watch<T> {
  const objects = new Map<string, T>();
  const [items, setItems] = createSignal<T[]>([]);
  const [state, setState] = createSignal<WatchState>('connecting');
  const [failure, setFailure] = createSignal<{ code: number; message: string; apiMessage?: string }>();
  let frame = 0;
  const publish = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      setItems([...objects.values()]);
    });
  };
  const query = new URLSearchParams();
  if (namespace) query.set('namespace', namespace);
  if (name) query.set('name', name);
  const source = new EventSource(`/api/watch/${resource}?${query.toString()}`);
  source.addEventListener('snapshot', (event) => {
    const { items: list } = JSON.parse((event as MessageEvent<string>).data) as { items: T[] };
    objects.clear();
    for (const object of list) objects.set(keyOf(object), object);
    publish();
  });
  source.addEventListener('change', (event) => {
    const { type, object } = JSON.parse((event as MessageEvent<string>).data) as { type: string; object: T };
    if (type === 'DELETED') objects.delete(keyOf(object));
    else objects.set(keyOf(object), object);
    publish();
  });
  source.addEventListener('status', (event) => {
    const { state: next } = JSON.parse((event as MessageEvent<string>).data) as { state: WatchState };
    setState(next);
  });
  source.addEventListener('failure', (event) => {
    const failed = JSON.parse((event as MessageEvent<string>).data) as { code: number; message: string };
    setFailure(failed);
    setState('failed');
    source.close();
    // The session ended (idle, expired, logged out elsewhere): the shell shows the login again.
    if (failed.code === 401) void loadSession();
  });
  // The connection to our server dropped: EventSource reconnects by itself with Last-Event-ID.
  source.addEventListener('error', () => {
    if (state() !== 'failed') setState('reconnecting');
  });
  onCleanup(() => {
    source.close();
    if (frame) cancelAnimationFrame(frame);
  });
  return { items, state, failure };
}
