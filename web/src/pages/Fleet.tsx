// The fleet at a glance: each HostPool's hosts with capacity bars (vCPUs and memory allocated of
// what the host has, VMs placed), readiness, maintenance and fencing; VMs by phase; the latest Events.
import { createMemo, For, Show } from 'solid-js';
import { Failure } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { age, bytes } from '../format';
import { createWatch, keyOf, type KubeObject } from '../watch';

function Bar(props: { label: string; used: number; total: number; text: string }) {
  const percent = () => (props.total > 0 ? Math.min(100, Math.round((props.used / props.total) * 100)) : 0);
  return (
    <div class="bar-row">
      <span class="bar-label">{props.label}</span>
      <div
        class="bar"
        role="meter"
        aria-label={props.label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent()}
      >
        <div class="bar-fill" classList={{ high: percent() > 85 }} style={{ width: `${percent()}%` }} />
      </div>
      <span class="bar-text">{props.text}</span>
    </div>
  );
}

function HostCard(props: { pool: KubeObject; host: { name: string; maintenance?: boolean } }) {
  const status = () =>
    ((props.pool.status?.hosts ?? []) as any[]).find((entry) => entry.name === props.host.name) ?? {};
  const memoryTotal = () => bytes(status().capacity?.memory);
  const memoryUsed = () => bytes(status().allocated?.memory) || 0;
  return (
    <article class="host" aria-label={`host ${props.host.name}`}>
      <header>
        <h3>{props.host.name}</h3>
        <span class={`badge ${status().ready ? 'ok' : 'bad'}`}>
          {status().ready ? 'Ready' : (status().reason ?? 'NotReady')}
        </span>
        <Show when={props.host.maintenance}>
          <span class="badge warn">maintenance</span>
        </Show>
        <Show when={status().fencing}>
          <span class="badge bad">fencing: {status().fencing.state}</span>
        </Show>
      </header>
      <Bar
        label="vCPUs"
        used={status().allocated?.cpus ?? 0}
        total={status().capacity?.cpus ?? 0}
        text={`${status().allocated?.cpus ?? 0} of ${status().capacity?.cpus ?? '?'}`}
      />
      <Bar
        label="memory"
        used={memoryUsed()}
        total={memoryTotal()}
        text={`${status().allocated?.memory ?? '0'} of ${status().capacity?.memory ?? '?'}`}
      />
      <div class="host-vms">{status().vmCount ?? 0} VMs</div>
    </article>
  );
}

export function Fleet(props: { namespace: string }) {
  const pools = createWatch('hostpools');
  const vms = createWatch('virtualmachines', props.namespace);
  const events = createWatch('events', props.namespace);
  const byPhase = createMemo(() => {
    const counts = new Map<string, number>();
    for (const vm of vms.items()) {
      const phase: string = vm.status?.phase ?? 'Pending';
      counts.set(phase, (counts.get(phase) ?? 0) + 1);
    }
    return [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  });
  const latest = createMemo(() =>
    [...events.items()].sort((a, b) => (eventTime(b) ?? '').localeCompare(eventTime(a) ?? '')).slice(0, 25),
  );
  return (
    <main>
      <h1>Fleet</h1>
      <section aria-labelledby="hosts-heading">
        <h2 id="hosts-heading">
          Hosts <LiveState state={pools.state()} />
        </h2>
        <Failure failure={pools.failure()} />
        <For each={pools.items()}>
          {(pool) => (
            <section class="pool" aria-label={`pool ${pool.metadata.name}`}>
              <h3>{pool.metadata.name}</h3>
              <div class="hosts">
                <For each={(pool.spec?.hosts ?? []) as { name: string; maintenance?: boolean }[]}>
                  {(host) => <HostCard pool={pool} host={host} />}
                </For>
              </div>
            </section>
          )}
        </For>
      </section>
      <section aria-labelledby="phases-heading">
        <h2 id="phases-heading">
          VMs by phase <LiveState state={vms.state()} />
        </h2>
        <Failure failure={vms.failure()} />
        <ul class="phases">
          <For each={byPhase()}>
            {([phase, count]) => (
              <li class={`phase phase-${phase}`}>
                <span>{phase}</span> <strong>{count}</strong>
              </li>
            )}
          </For>
        </ul>
      </section>
      <section aria-labelledby="events-heading">
        <h2 id="events-heading">
          Latest Events <LiveState state={events.state()} />
        </h2>
        <Failure failure={events.failure()} />
        <EventList events={latest()} />
      </section>
    </main>
  );
}

export function eventTime(event: KubeObject): string | undefined {
  return event.lastTimestamp ?? event.eventTime ?? event.metadata.creationTimestamp;
}

export function EventList(props: { events: KubeObject[] }) {
  return (
    <div class="table-scroll" tabIndex={0} role="region" aria-label="Events table">
      <table class="events">
        <thead>
          <tr>
            <th scope="col">Age</th>
            <th scope="col">Type</th>
            <th scope="col">Reason</th>
            <th scope="col">Object</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          <For
            each={props.events}
            fallback={
              <tr>
                <td colSpan={5}>No Events.</td>
              </tr>
            }
          >
            {(event) => (
              <tr data-key={keyOf(event)}>
                <td>{age(eventTime(event))}</td>
                <td>{event.type}</td>
                <td>{event.reason}</td>
                <td>
                  {event.involvedObject?.kind}/{event.involvedObject?.name}
                </td>
                <td>{event.message}</td>
              </tr>
            )}
          </For>
        </tbody>
      </table>
    </div>
  );
}
