// Every VM in scope, live: a virtualised table (only the rows in view are in the DOM, so 1,000+
// VMs stay fast), filtered by namespace (the watch's scope), phase, host and label, sorted by
// any column, with start and stop where the person may patch VMs, per row or for the selected rows.
import { createVirtualizer } from '@tanstack/solid-virtual';
import { createMemo, createResource, createSignal, For, Show } from 'solid-js';
import { canI, failureOf, vmAction } from '../api';
import { Actions } from '../components/Actions';
import { Failure } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { bytes } from '../format';
import { Link, navigate } from '../router';
import { createWatch, keyOf, type KubeObject } from '../watch';

const ROW_HEIGHT = 40;
type SortKey = 'name' | 'namespace' | 'phase' | 'host' | 'memory';
const COLUMNS: { key: SortKey; label: string }[] = [
  { key: 'name', label: 'Name' },
  { key: 'namespace', label: 'Namespace' },
  { key: 'phase', label: 'Phase' },
  { key: 'host', label: 'Host' },
  { key: 'memory', label: 'Memory' },
];

function sortValue(vm: KubeObject, key: SortKey): string | number {
  switch (key) {
    case 'name':
      return vm.metadata.name;
    case 'namespace':
      return vm.metadata.namespace ?? '';
    case 'phase':
      return vm.status?.phase ?? 'Pending';
    case 'host':
      return vm.status?.host ?? '';
    case 'memory':
      return bytes(vm.spec?.memory) || 0;
  }
}

/** `key=value` or `key` (has the label), comma-separated, as a label selector's equality form. */
function labelMatcher(text: string): (vm: KubeObject) => boolean {
  const terms = text
    .split(',')
    .map((term) => term.trim())
    .filter(Boolean)
    .map((term) => term.split('=').map((part) => part.trim()) as [string, string?]);
  return (vm) =>
    terms.every(([key, value]) => {
      const labels = vm.metadata.labels ?? {};
      return value === undefined ? key in labels : labels[key] === value;
    });
}

export function Vms(props: { namespace: string }) {
  const vms = createWatch('virtualmachines', props.namespace);
  const [namespaceInput, setNamespaceInput] = createSignal(props.namespace);
  const [phase, setPhase] = createSignal('');
  const [host, setHost] = createSignal('');
  const [labels, setLabels] = createSignal('');
  const [text, setText] = createSignal('');
  const [sort, setSort] = createSignal<{ key: SortKey; descending: boolean }>({ key: 'name', descending: false });
  const phases = createMemo(() => [...new Set(vms.items().map((vm) => vm.status?.phase ?? 'Pending'))].sort());
  const hosts = createMemo(() =>
    [
      ...new Set(
        vms
          .items()
          .map((vm) => vm.status?.host as string | undefined)
          .filter((h): h is string => !!h),
      ),
    ].sort(),
  );
  const rows = createMemo(() => {
    const matchesLabels = labelMatcher(labels());
    const needle = text().toLowerCase();
    const { key, descending } = sort();
    const list = vms
      .items()
      .filter(
        (vm) =>
          (!phase() || (vm.status?.phase ?? 'Pending') === phase()) &&
          (!host() || vm.status?.host === host()) &&
          (!needle || vm.metadata.name.toLowerCase().includes(needle)) &&
          matchesLabels(vm),
      );
    list.sort((a, b) => {
      const x = sortValue(a, key);
      const y = sortValue(b, key);
      const order = x < y ? -1 : x > y ? 1 : keyOf(a).localeCompare(keyOf(b));
      return descending ? -order : order;
    });
    return list;
  });
  // Solid assigns the ref when it creates the element; the virtualizer reads it in its onMount,
  // once the element is in the document (a signal would hand it over before: measured 0×0).
  // eslint-disable-next-line no-unassigned-vars
  let scroller: HTMLDivElement | undefined;
  const virtualizer = createVirtualizer({
    get count() {
      return rows().length;
    },
    getScrollElement: () => scroller ?? null,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const scope = (event: SubmitEvent) => {
    event.preventDefault();
    const namespace = namespaceInput().trim();
    navigate(namespace ? `/vms?namespace=${encodeURIComponent(namespace)}` : '/vms');
  };
  // Selected rows by namespace/name; a row filtered out of view stays selected (the count says so).
  const [selected, setSelected] = createSignal<ReadonlySet<string>>(new Set());
  const toggle = (key: string, on: boolean) =>
    setSelected((current) => {
      const next = new Set(current);
      if (on) next.add(key);
      else next.delete(key);
      return next;
    });
  const allShown = () => rows().length > 0 && rows().every((vm) => selected().has(keyOf(vm)));
  const [mayPatch] = createResource(() => canI('patch', 'virtualmachines', props.namespace));
  const [mayCreate] = createResource(() => canI('create', 'virtualmachines', props.namespace));
  const [bulk, setBulk] = createSignal<{ text: string; refused: string[] }>();
  const runBulk = async (action: string) => {
    const targets = vms.items().filter((vm) => selected().has(keyOf(vm)));
    setBulk({ text: `asking ${targets.length} VMs to ${action}…`, refused: [] });
    const results = await Promise.all(
      targets.map((vm) =>
        vmAction(vm.metadata.namespace ?? '', vm.metadata.name, action).then(
          () => undefined,
          (error: unknown) => `${keyOf(vm)}: ${failureOf(error).message}`,
        ),
      ),
    );
    const refused = results.filter((r): r is string => r !== undefined);
    setBulk({
      text: `asked ${targets.length - refused.length} of ${targets.length} VMs to ${action}; each row's phase follows`,
      refused,
    });
  };
  const toggleSort = (key: SortKey) =>
    setSort((current) => ({ key, descending: current.key === key ? !current.descending : false }));
  return (
    <main class="vms-page">
      <h1>
        Virtual machines <LiveState state={vms.state()} />
      </h1>
      <Show when={mayCreate()}>
        <p>
          <Link href={`/vms/new${props.namespace ? `?namespace=${encodeURIComponent(props.namespace)}` : ''}`}>
            Create a VM
          </Link>
        </p>
      </Show>
      <form class="filters" onSubmit={scope} aria-label="filters">
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
        <label>
          Phase
          <select name="phase" value={phase()} onChange={(event) => setPhase(event.currentTarget.value)}>
            <option value="">any</option>
            <For each={phases()}>{(value) => <option value={value}>{value}</option>}</For>
          </select>
        </label>
        <label>
          Host
          <select name="host" value={host()} onChange={(event) => setHost(event.currentTarget.value)}>
            <option value="">any</option>
            <For each={hosts()}>{(value) => <option value={value}>{value}</option>}</For>
          </select>
        </label>
        <label>
          Labels
          <input
            name="labels"
            placeholder="app=web,tier"
            value={labels()}
            onInput={(event) => setLabels(event.currentTarget.value)}
          />
        </label>
        <label>
          Name
          <input name="search" value={text()} onInput={(event) => setText(event.currentTarget.value)} />
        </label>
      </form>
      <Failure failure={vms.failure()} />
      <Show when={vms.failure()?.code === 403 && !props.namespace}>
        <p class="hint">Enter a namespace you have access to.</p>
      </Show>
      <p class="count" role="status">
        {rows().length} of {vms.items().length} VMs
        <Show when={selected().size > 0}>, {selected().size} selected</Show>
      </p>
      <Show when={mayPatch()}>
        <div class="bulk actions" aria-label="actions on the selected VMs" role="group">
          <button
            type="button"
            data-bulk="start"
            disabled={selected().size === 0}
            onClick={() => void runBulk('start')}
          >
            Start selected
          </button>
          <button type="button" data-bulk="stop" disabled={selected().size === 0} onClick={() => void runBulk('stop')}>
            Stop selected
          </button>
          <Show when={bulk()}>
            {(result) => (
              <span class="outcome" role="status" data-bulk-outcome>
                {result().text}
              </span>
            )}
          </Show>
        </div>
        <Show when={bulk()?.refused.length}>
          <ul class="failure" role="alert">
            <For each={bulk()!.refused}>{(line) => <li>{line}</li>}</For>
          </ul>
        </Show>
      </Show>
      <div class="vm-table" role="table" aria-label="virtual machines" aria-rowcount={rows().length + 1}>
        <div class="vm-row vm-head" role="row">
          <div role="columnheader">
            <input
              type="checkbox"
              aria-label="select all VMs shown"
              checked={allShown()}
              onChange={(event) => {
                const on = event.currentTarget.checked;
                setSelected(on ? new Set([...selected(), ...rows().map(keyOf)]) : new Set<string>());
              }}
            />
          </div>
          <For each={COLUMNS}>
            {(column) => (
              <div
                role="columnheader"
                aria-sort={sort().key === column.key ? (sort().descending ? 'descending' : 'ascending') : 'none'}
              >
                <button type="button" class="sort" onClick={() => toggleSort(column.key)}>
                  {column.label}
                </button>
              </div>
            )}
          </For>
          <div role="columnheader">Actions</div>
        </div>
        <div class="vm-scroll" ref={scroller}>
          <div class="vm-space" style={{ height: `${virtualizer.getTotalSize()}px` }}>
            <For each={virtualizer.getVirtualItems()}>
              {(item) => {
                const vm = () => rows()[item.index];
                return (
                  <Show when={vm()}>
                    {(row) => (
                      <div
                        class="vm-row"
                        role="row"
                        aria-rowindex={item.index + 2}
                        data-vm={keyOf(row())}
                        style={{ transform: `translateY(${item.start}px)` }}
                      >
                        <div role="cell">
                          <input
                            type="checkbox"
                            aria-label={`select ${row().metadata.name}`}
                            checked={selected().has(keyOf(row()))}
                            onChange={(event) => toggle(keyOf(row()), event.currentTarget.checked)}
                          />
                        </div>
                        <div role="cell">
                          <Link
                            href={`/vms/${encodeURIComponent(row().metadata.namespace ?? '')}/${encodeURIComponent(row().metadata.name)}`}
                          >
                            {row().metadata.name}
                          </Link>
                        </div>
                        <div role="cell">{row().metadata.namespace}</div>
                        <div role="cell" class={`phase phase-${row().status?.phase ?? 'Pending'}`} data-phase>
                          {row().status?.phase ?? 'Pending'}
                        </div>
                        <div role="cell">{row().status?.host ?? ''}</div>
                        <div role="cell">{row().spec?.memory ?? ''}</div>
                        <div role="cell">
                          <Actions vm={row()} actions={['start', 'stop']} compact />
                        </div>
                      </div>
                    )}
                  </Show>
                );
              }}
            </For>
          </div>
        </div>
      </div>
    </main>
  );
}
