// Hosts per HostPool: each host's facts (hypervisor, versions, URI, labels), capacity, heartbeat,
// readiness, fencing, and its maintenance flag (spec.hosts[].maintenance), whose confirmation
// lists the VMs the controller will live-migrate away. The pool's Maintenance condition says
// how far a drain is.
import { createMemo, createResource, createSignal, For, Index, Show } from 'solid-js';
import { canI, failureOf, setMaintenance } from '../api';
import { Confirm } from '../components/Confirm';
import { Failure, type FailureInfo } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { age } from '../format';
import { Link } from '../router';
import { createWatch, keyOf, type KubeObject } from '../watch';

interface HostSpec {
  name: string;
  uri: string;
  hypervisor?: string;
  labels?: Record<string, string>;
  maintenance?: boolean;
  fencing?: { method?: string };
}

function HostFacts(props: {
  pool: KubeObject;
  host: HostSpec;
  vms: KubeObject[];
  vmsFailure: FailureInfo | undefined;
  mayPatch: boolean;
}) {
  const status = () =>
    ((props.pool.status?.hosts ?? []) as any[]).find((entry) => entry.name === props.host.name) ?? {};
  const [open, setOpen] = createSignal(false);
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [asked, setAsked] = createSignal<boolean>();
  const on = () => props.host.maintenance === true;
  const change = async () => {
    setOpen(false);
    setFailure(undefined);
    // Decided before the request: the watch may show the change before the request returns.
    const wanted = !on();
    try {
      await setMaintenance(props.pool.metadata.name, props.host.name, wanted);
      setAsked(wanted);
    } catch (error) {
      setFailure(failureOf(error));
    }
  };
  return (
    <article class="host" aria-label={`host ${props.host.name}`} data-host={props.host.name}>
      <header>
        <h3>{props.host.name}</h3>
        <span class={`badge ${status().ready ? 'ok' : 'bad'}`} data-ready={String(!!status().ready)}>
          {status().ready ? 'Ready' : (status().reason ?? 'NotReady')}
        </span>
        <Show when={on()}>
          <span class="badge warn">maintenance</span>
        </Show>
      </header>
      <dl>
        <dt>URI</dt>
        <dd>{props.host.uri}</dd>
        <dt>Hypervisor</dt>
        <dd>
          {status().hypervisor ?? props.host.hypervisor ?? 'unknown'} {status().hypervisorVersion ?? ''}
        </dd>
        <dt>libvirt</dt>
        <dd>{status().libvirtVersion ?? 'unknown'}</dd>
        <dt>Capacity</dt>
        <dd>{status().capacity ? `${status().capacity.cpus} CPUs, ${status().capacity.memory}` : 'unknown'}</dd>
        <dt>Allocated</dt>
        <dd>
          {status().allocated ? `${status().allocated.cpus} vCPUs, ${status().allocated.memory}` : 'none'} (
          {status().vmCount ?? 0} {status().vmCount === 1 ? 'VM' : 'VMs'})
        </dd>
        <dt>Heartbeat</dt>
        <dd data-field="heartbeat">
          {status().lastHeartbeatTime ? `${age(status().lastHeartbeatTime)} ago` : 'none recorded'}
        </dd>
        <Show when={!status().ready && status().message}>
          <dt>Why not ready</dt>
          <dd>{status().message}</dd>
        </Show>
        <dt>Fencing</dt>
        <dd data-field="fencing">
          {status().fencing
            ? `${status().fencing.state}${status().fencing.attempts ? ` (${status().fencing.attempts} attempts)` : ''}: ${status().fencing.message ?? ''}`
            : `${props.host.fencing?.method ?? 'none'} configured; not fenced`}
        </dd>
        <Show when={status().orphanDomains}>
          <dt>Orphan domains</dt>
          <dd>{status().orphanDomains}</dd>
        </Show>
        <Show when={Object.keys(props.host.labels ?? {}).length > 0}>
          <dt>Labels</dt>
          <dd>
            {Object.entries(props.host.labels ?? {})
              .map(([key, value]) => `${key}=${value}`)
              .join(', ')}
          </dd>
        </Show>
      </dl>
      <Show when={props.mayPatch}>
        <div class="actions">
          <button type="button" data-maintenance={String(on())} onClick={() => setOpen(true)}>
            {on() ? 'End maintenance' : 'Start maintenance'}
          </button>
          <Show when={asked() !== undefined}>
            <span class="outcome" role="status" data-outcome>
              {asked() === on()
                ? on()
                  ? 'maintenance set: the controller migrates its VMs away (see the pool’s Maintenance condition)'
                  : 'maintenance ended: the host takes VMs again'
                : 'asked; waiting for the HostPool to change'}
            </span>
          </Show>
          <Failure failure={failure()} />
        </div>
      </Show>
      <Confirm
        open={open()}
        title={on() ? `End maintenance of ${props.host.name}?` : `Put ${props.host.name} into maintenance?`}
        confirm={on() ? 'End maintenance' : 'Start maintenance'}
        onConfirm={() => void change()}
        onCancel={() => setOpen(false)}
      >
        <Show
          when={!on()}
          fallback={<p>The host takes new VMs again. VMs that were migrated away stay where they are.</p>}
        >
          <p>The host takes no new VMs, and the controller live-migrates these VMs to other hosts of the pool:</p>
          <Failure failure={props.vmsFailure} />
          <ul data-migrating>
            <For each={props.vms} fallback={<li>none: no VM runs on {props.host.name}</li>}>
              {(vm) => <li>{keyOf(vm)}</li>}
            </For>
          </ul>
        </Show>
      </Confirm>
    </article>
  );
}

export function Hosts() {
  const pools = createWatch('hostpools');
  const vms = createWatch('virtualmachines');
  const [mayPatch] = createResource(() => canI('patch', 'hostpools', ''));
  /** VMs by pool/host, the ones a maintenance of that host moves. */
  const placed = createMemo(() => {
    const map = new Map<string, KubeObject[]>();
    for (const vm of vms.items()) {
      const host = vm.status?.host as string | undefined;
      if (!host) continue;
      const key = `${vm.spec?.hostPoolRef?.name ?? ''}/${host}`;
      map.set(key, [...(map.get(key) ?? []), vm]);
    }
    for (const list of map.values()) list.sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    return map;
  });
  return (
    <main>
      <h1>
        Hosts <LiveState state={pools.state()} />
      </h1>
      <Failure failure={pools.failure()} />
      <Index each={pools.items()} fallback={<p>No HostPools.</p>}>
        {(pool) => {
          // Index, not For: a watch event replaces the object, and the cards (an asked change, an
          // open confirmation) must stay.
          const maintenance = () =>
            ((pool().status?.conditions ?? []) as { type: string; status: string; message?: string }[]).find(
              (condition) => condition.type === 'Maintenance',
            );
          return (
            <section class="pool" aria-label={`pool ${pool().metadata.name}`}>
              <h2>
                {pool().metadata.name}{' '}
                <span class="hint">
                  {pool().status?.readyHosts ?? 0} of {pool().status?.hostCount ?? (pool().spec?.hosts ?? []).length}{' '}
                  hosts ready
                </span>
              </h2>
              <Show when={maintenance()}>
                {(condition) => (
                  <p data-field="maintenance-condition">
                    Maintenance: {condition().status} {condition().message ?? ''}
                  </p>
                )}
              </Show>
              <div class="hosts">
                <Index each={(pool().spec?.hosts ?? []) as HostSpec[]}>
                  {(host) => (
                    <HostFacts
                      pool={pool()}
                      host={host()}
                      vms={placed().get(`${pool().metadata.name}/${host().name}`) ?? []}
                      vmsFailure={vms.failure()}
                      mayPatch={mayPatch() === true}
                    />
                  )}
                </Index>
              </div>
            </section>
          );
        }}
      </Index>
      <p class="hint">
        VM counts and capacity are the controller's; the <Link href="/fleet">Fleet</Link> page shows them as bars.
      </p>
    </main>
  );
}
