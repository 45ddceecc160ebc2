// One VM: phase, host, addresses, conditions in words, its labels and annotations, the last
// action and its outcome, the Events about it, and the actions the person may take; its serial
// console and its YAML in tabs.
import { createMemo, createSignal, For, lazy, Show } from 'solid-js';
import { Actions } from '../components/Actions';
import { DeleteVm } from '../components/DeleteVm';
import { MigrationProgress } from '../components/MigrationProgress';
import { YamlEditor } from '../components/YamlEditor';
// xterm.js only for those who open the Console tab: its own chunk, not in the first load.
const SerialConsole = lazy(() => import('../console/SerialConsole').then((m) => ({ default: m.SerialConsole })));
// noVNC likewise, for the VNC tab.
const VncViewer = lazy(() => import('../console/VncViewer').then((m) => ({ default: m.VncViewer })));
import { Failure } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { age } from '../format';
import { Link } from '../router';
import { createWatch, type KubeObject } from '../watch';
import { EventList, eventTime } from './Fleet';

/** cores × sockets × threads (spec.cpu; each defaults to 1). */
function vcpus(vm: KubeObject): number {
  const cpu = (vm.spec?.cpu ?? {}) as { cores?: number; sockets?: number; threads?: number };
  return (cpu.cores ?? 1) * (cpu.sockets ?? 1) * (cpu.threads ?? 1);
}

const ACTIONS = ['start', 'stop', 'restart', 'pause', 'unpause', 'suspend', 'resume', 'migrate'];
const TABS = ['Overview', 'Console', 'VNC', 'YAML'] as const;

function Pairs(props: { title: string; values: Record<string, string> | undefined }) {
  return (
    <section aria-label={props.title}>
      <h2>{props.title}</h2>
      <Show when={Object.keys(props.values ?? {}).length > 0} fallback={<p>none</p>}>
        <dl class="pairs">
          <For each={Object.entries(props.values ?? {})}>
            {([key, value]) => (
              <>
                <dt>{key}</dt>
                <dd>{value}</dd>
              </>
            )}
          </For>
        </dl>
      </Show>
    </section>
  );
}

export function VmDetail(props: { namespace: string; name: string }) {
  const vms = createWatch('virtualmachines', props.namespace, props.name);
  const events = createWatch('events', props.namespace, props.name);
  const vm = createMemo(() => vms.items()[0] as KubeObject | undefined);
  // The VM's pool, for migrate's choice of host: its ready hosts, not in maintenance.
  const poolName = createMemo(() => (vm()?.spec?.hostPoolRef?.name as string | undefined) ?? '');
  const [tab, setTab] = createSignal<(typeof TABS)[number]>('Overview');
  const vmEvents = createMemo(() =>
    events
      .items()
      .filter((event) => event.involvedObject?.kind === 'VirtualMachine')
      .sort((a, b) => (eventTime(b) ?? '').localeCompare(eventTime(a) ?? '')),
  );
  return (
    <main>
      <p>
        <Link href={`/vms?namespace=${encodeURIComponent(props.namespace)}`}>← VMs in {props.namespace}</Link>
      </p>
      <h1>
        {props.name} <LiveState state={vms.state()} />
      </h1>
      <Failure failure={vms.failure()} />
      <Show when={vms.state() === 'live' && !vm()}>
        <p role="status">
          VirtualMachine {props.name} does not exist in namespace {props.namespace}.
        </p>
      </Show>
      <div role="tablist" aria-label="views of the VM" class="tabs">
        <For each={TABS}>
          {(name) => (
            <button
              type="button"
              role="tab"
              id={`tab-${name}`}
              aria-selected={tab() === name}
              aria-controls={`panel-${name}`}
              onClick={() => setTab(name)}
            >
              {name}
            </button>
          )}
        </For>
      </div>
      <Show when={tab() === 'Console'}>
        <div role="tabpanel" id="panel-Console" aria-labelledby="tab-Console">
          <SerialConsole
            namespace={props.namespace}
            name={props.name}
            phase={vm()?.status?.phase as string | undefined}
          />
        </div>
      </Show>
      <Show when={tab() === 'VNC'}>
        <div role="tabpanel" id="panel-VNC" aria-labelledby="tab-VNC">
          <VncViewer namespace={props.namespace} name={props.name} graphics={vm()?.spec?.graphics !== undefined} />
        </div>
      </Show>
      <Show when={tab() === 'YAML'}>
        <div role="tabpanel" id="panel-YAML" aria-labelledby="tab-YAML">
          <YamlEditor namespace={props.namespace} name={props.name} />
        </div>
      </Show>
      <Show when={tab() === 'Overview' && vm()}>
        {(current) => (
          <div role="tabpanel" id="panel-Overview" aria-labelledby="tab-Overview">
            <dl class="summary">
              <dt>Phase</dt>
              <dd data-field="phase">{current().status?.phase ?? 'Pending'}</dd>
              <dt>Host</dt>
              <dd>{current().status?.host ?? 'not placed'}</dd>
              <dt>Memory</dt>
              <dd>{current().spec?.memory}</dd>
              <dt>vCPUs</dt>
              <dd>{vcpus(current())}</dd>
              <dt>Addresses</dt>
              <dd>
                {((current().status?.addresses ?? []) as { address?: string; ip?: string }[])
                  .map((a) => a.address ?? a.ip)
                  .join(', ') || 'none known'}
              </dd>
              <dt>Last action</dt>
              <dd data-field="last-action">
                {current().status?.lastAction
                  ? `${current().status.lastAction.action} ${current().status.lastAction.state}: ${current().status.lastAction.message ?? ''}`
                  : 'none'}
              </dd>
            </dl>
            <MigrationProgress migration={current().status?.migration} />
            <Show keyed when={poolName()}>
              {(pool) => <VmActions vm={current()} pool={pool} />}
            </Show>
            <DeleteVm vm={current()} />
            <section aria-label="conditions">
              <h2>Conditions</h2>
              <div class="table-scroll" tabIndex={0} role="region" aria-label="Conditions table">
                <table class="conditions">
                  <thead>
                    <tr>
                      <th scope="col">Type</th>
                      <th scope="col">Status</th>
                      <th scope="col">Reason</th>
                      <th scope="col">Message</th>
                      <th scope="col">Since</th>
                    </tr>
                  </thead>
                  <tbody>
                    <For
                      each={(current().status?.conditions ?? []) as Record<string, string>[]}
                      fallback={
                        <tr>
                          <td colSpan={5}>none yet</td>
                        </tr>
                      }
                    >
                      {(condition) => (
                        <tr>
                          <td>{condition.type}</td>
                          <td>{condition.status}</td>
                          <td>{condition.reason}</td>
                          <td>{condition.message}</td>
                          <td>{age(condition.lastTransitionTime)}</td>
                        </tr>
                      )}
                    </For>
                  </tbody>
                </table>
              </div>
            </section>
            <Pairs title="Labels" values={current().metadata.labels} />
            <Pairs title="Annotations" values={current().metadata.annotations} />
          </div>
        )}
      </Show>
      <section aria-label="events">
        <h2>
          Events <LiveState state={events.state()} />
        </h2>
        <Failure failure={events.failure()} />
        <EventList events={vmEvents()} />
      </section>
    </main>
  );
}

/** The actions, with migrate's choice among the pool's ready hosts that are not in maintenance. */
function VmActions(props: { vm: KubeObject; pool: string }) {
  const pools = createWatch('hostpools', '', props.pool);
  const hosts = createMemo(() => {
    const pool = pools.items()[0];
    if (!pool) return [];
    const cordoned = new Set(
      ((pool.spec?.hosts ?? []) as { name: string; maintenance?: boolean }[])
        .filter((host) => host.maintenance)
        .map((host) => host.name),
    );
    return ((pool.status?.hosts ?? []) as { name: string; ready?: boolean }[])
      .filter((host) => host.ready && !cordoned.has(host.name))
      .map((host) => host.name);
  });
  return <Actions vm={props.vm} actions={ACTIONS} hosts={hosts()} />;
}
