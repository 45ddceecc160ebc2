// Create a VM: a form made from the VirtualMachine CRD's own schema (src/api/virtualmachine.ts:
// the choices, defaults and descriptions shown are the schema's). Check runs the checks of
// `virtfleet validate` on the console's server (same field paths and messages) and a dry-run
// create as the person; a problem is shown at its field and nothing reaches the cluster.
// Create does both again, then creates. The YAML it applies is shown, so people learn the
// GitOps form.
import { createMemo, createSignal, For, Show, type JSX } from 'solid-js';
import { VirtualMachineSpecSchema } from '../../../src/api/virtualmachine';
import { createVmObject, failureOf, type CreateAnswer } from '../api';
import { Failure, type FailureInfo } from '../components/Failure';
import { LiveState } from '../components/LiveState';
import { Link, navigate } from '../router';
import { createWatch } from '../watch';

interface FieldSchema {
  description?: string;
  enum?: string[];
  default?: unknown;
  properties?: Record<string, FieldSchema>;
}
const SPEC = (VirtualMachineSpecSchema as unknown as FieldSchema).properties ?? {};
const field = (...path: string[]): FieldSchema =>
  path.reduce<FieldSchema>((schema, key) => schema.properties?.[key] ?? {}, { properties: SPEC });

type Boot = 'kernel' | 'install';

/** One labelled input with the schema's description and the problem found at its path, if any. */
function Field(props: { label: string; path: string; help?: string; problem?: string; children: JSX.Element }) {
  const id = () => `field-${props.path.replace(/[^a-z0-9]+/gi, '-')}`;
  return (
    <div class="form-field" data-path={props.path}>
      <label for={id()}>{props.label}</label>
      {props.children}
      <Show when={props.help}>
        <small id={`${id()}-help`}>{props.help}</small>
      </Show>
      <Show when={props.problem}>
        <p class="field-problem" role="alert" id={`${id()}-problem`}>
          <code>{props.path}</code>: {props.problem}
        </p>
      </Show>
    </div>
  );
}

export function CreateVm(props: { namespace: string }) {
  const pools = createWatch('hostpools');
  const [name, setName] = createSignal('');
  const [namespace, setNamespace] = createSignal(props.namespace || 'default');
  const [pool, setPool] = createSignal('');
  const [hypervisor, setHypervisor] = createSignal(String(field('hypervisor').default ?? 'auto'));
  const [workload, setWorkload] = createSignal(String(field('workload').default ?? 'general'));
  const [memory, setMemory] = createSignal('512Mi');
  const [cores, setCores] = createSignal('1');
  const [boot, setBoot] = createSignal<Boot>('kernel');
  const [kernel, setKernel] = createSignal('');
  const [initrd, setInitrd] = createSignal('');
  const [cmdline, setCmdline] = createSignal('console=ttyS0');
  const [profile, setProfile] = createSignal('');
  const [graphics, setGraphics] = createSignal(false);
  const [answer, setAnswer] = createSignal<CreateAnswer>();
  const [failure, setFailure] = createSignal<FailureInfo>();
  const [busy, setBusy] = createSignal(false);

  const object = createMemo(() => {
    const spec: Record<string, unknown> = {
      hostPoolRef: { name: pool() },
      hypervisor: hypervisor(),
      memory: memory().trim(),
      cpu: { cores: Number(cores()) },
    };
    if (hypervisor() === 'auto') spec.workload = workload();
    if (boot() === 'kernel')
      spec.kernelBoot = {
        kernel: kernel().trim(),
        ...(initrd().trim() ? { initrd: initrd().trim() } : {}),
        ...(cmdline().trim() ? { cmdline: cmdline().trim() } : {}),
      };
    else spec.install = { profileRef: { name: profile().trim() } };
    if (graphics()) spec.graphics = { type: 'vnc' };
    return {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: name().trim(), namespace: namespace().trim() },
      spec,
    };
  });
  const problemAt = (path: string) =>
    answer()
      ?.problems.filter((p) => p.field === path || p.field.startsWith(`${path}.`) || p.field.startsWith(`${path}[`))
      .map((p) => p.message)
      .join('; ') || undefined;
  const shownPaths = [
    'metadata.name',
    'metadata.namespace',
    'spec.hostPoolRef',
    'spec.hypervisor',
    'spec.workload',
    'spec.memory',
    'spec.cpu',
    'spec.kernelBoot',
    'spec.install',
    'spec.graphics',
  ];
  const otherProblems = () =>
    answer()?.problems.filter((p) => !shownPaths.some((path) => p.field === path || p.field.startsWith(`${path}.`))) ??
    [];

  const submit = async (create: boolean) => {
    setBusy(true);
    setFailure(undefined);
    try {
      const result = await createVmObject(namespace().trim(), object(), create);
      setAnswer(result);
      if (result.created)
        navigate(`/vms/${encodeURIComponent(namespace().trim())}/${encodeURIComponent(name().trim())}`);
    } catch (error) {
      setFailure(failureOf(error));
    } finally {
      setBusy(false);
    }
  };
  const input = (value: () => string, set: (v: string) => void, path: string, extra: Record<string, string> = {}) => (
    <input
      id={`field-${path.replace(/[^a-z0-9]+/gi, '-')}`}
      name={path}
      value={value()}
      aria-invalid={problemAt(path) ? 'true' : undefined}
      aria-describedby={`field-${path.replace(/[^a-z0-9]+/gi, '-')}-help`}
      onInput={(event) => set(event.currentTarget.value)}
      {...extra}
    />
  );

  return (
    <main class="create-vm">
      <p>
        <Link href="/vms">← VMs</Link>
      </p>
      <h1>
        Create a VM <LiveState state={pools.state()} />
      </h1>
      <form
        aria-label="new virtual machine"
        onSubmit={(event) => {
          event.preventDefault();
          void submit(true);
        }}
      >
        <Field label="Name" path="metadata.name" problem={problemAt('metadata.name')} help="A DNS label: a-z, 0-9, -.">
          {input(name, setName, 'metadata.name', { required: '' })}
        </Field>
        <Field label="Namespace" path="metadata.namespace" problem={problemAt('metadata.namespace')}>
          {input(namespace, setNamespace, 'metadata.namespace')}
        </Field>
        <Field
          label="Host pool"
          path="spec.hostPoolRef"
          problem={problemAt('spec.hostPoolRef')}
          help={field('hostPoolRef').description}
        >
          <select
            id="field-spec-hostPoolRef"
            name="spec.hostPoolRef"
            value={pool()}
            onChange={(event) => setPool(event.currentTarget.value)}
          >
            <option value="">choose a pool</option>
            <For each={pools.items()}>{(p) => <option value={p.metadata.name}>{p.metadata.name}</option>}</For>
          </select>
        </Field>
        <Field
          label="Hypervisor"
          path="spec.hypervisor"
          problem={problemAt('spec.hypervisor')}
          help={field('hypervisor').description}
        >
          <select
            id="field-spec-hypervisor"
            name="spec.hypervisor"
            value={hypervisor()}
            onChange={(event) => setHypervisor(event.currentTarget.value)}
          >
            <For each={field('hypervisor').enum ?? []}>{(value) => <option value={value}>{value}</option>}</For>
          </select>
        </Field>
        <Show when={hypervisor() === 'auto'}>
          <Field
            label="Workload"
            path="spec.workload"
            problem={problemAt('spec.workload')}
            help={field('workload').description}
          >
            <select
              id="field-spec-workload"
              name="spec.workload"
              value={workload()}
              onChange={(event) => setWorkload(event.currentTarget.value)}
            >
              <For each={field('workload').enum ?? []}>{(value) => <option value={value}>{value}</option>}</For>
            </select>
          </Field>
        </Show>
        <Field label="Memory" path="spec.memory" problem={problemAt('spec.memory')} help={field('memory').description}>
          {input(memory, setMemory, 'spec.memory')}
        </Field>
        <Field label="vCPUs (cores)" path="spec.cpu" problem={problemAt('spec.cpu')} help={field('cpu').description}>
          {input(cores, setCores, 'spec.cpu', { type: 'number', min: '1' })}
        </Field>
        <fieldset>
          <legend>Boot</legend>
          <label>
            <input
              type="radio"
              name="boot"
              value="kernel"
              checked={boot() === 'kernel'}
              onChange={() => setBoot('kernel')}
            />{' '}
            a kernel on the host (kernelBoot)
          </label>
          <label>
            <input
              type="radio"
              name="boot"
              value="install"
              checked={boot() === 'install'}
              onChange={() => setBoot('install')}
            />{' '}
            install from a profile (install)
          </label>
          <Show when={boot() === 'kernel'}>
            <Field
              label="Kernel"
              path="spec.kernelBoot.kernel"
              problem={problemAt('spec.kernelBoot')}
              help={field('kernelBoot', 'kernel').description}
            >
              {input(kernel, setKernel, 'spec.kernelBoot.kernel')}
            </Field>
            <Field label="Initrd" path="spec.kernelBoot.initrd" help={field('kernelBoot', 'initrd').description}>
              {input(initrd, setInitrd, 'spec.kernelBoot.initrd')}
            </Field>
            <Field label="Kernel command line" path="spec.kernelBoot.cmdline">
              {input(cmdline, setCmdline, 'spec.kernelBoot.cmdline')}
            </Field>
          </Show>
          <Show when={boot() === 'install'}>
            <Field
              label="Install profile"
              path="spec.install"
              problem={problemAt('spec.install')}
              help={field('install').description}
            >
              {input(profile, setProfile, 'spec.install')}
            </Field>
          </Show>
        </fieldset>
        <div class="form-field" data-path="spec.graphics">
          <label>
            <input
              type="checkbox"
              name="spec.graphics"
              checked={graphics()}
              aria-describedby="field-spec-graphics-help"
              onChange={(event) => setGraphics(event.currentTarget.checked)}
            />{' '}
            a VNC display (spec.graphics)
          </label>
          <small id="field-spec-graphics-help">{field('graphics').description}</small>
          <Show when={problemAt('spec.graphics')}>
            <p class="field-problem" role="alert">
              <code>spec.graphics</code>: {problemAt('spec.graphics')}
            </p>
          </Show>
        </div>
        <Show when={otherProblems().length > 0}>
          <ul class="problems" role="alert">
            <For each={otherProblems()}>
              {(p) => (
                <li>
                  <code>{p.field || 'the object'}</code>: {p.message}
                </li>
              )}
            </For>
          </ul>
        </Show>
        <Failure failure={failure()} />
        <p class="form-buttons">
          <button type="button" disabled={busy()} onClick={() => void submit(false)}>
            Check (dry run)
          </button>
          <button type="submit" disabled={busy()}>
            Create
          </button>
          <span role="status" data-outcome>
            {answer()?.message ?? ''}
          </span>
        </p>
      </form>
      <section aria-label="the YAML it applies" class="yaml">
        <h2>The YAML it applies</h2>
        <p>
          What Create sends, as <code>kubectl get -o yaml</code> shows it; keep it in Git and{' '}
          <code>kubectl apply -f</code> it instead.
        </p>
        <pre class="kickstart" data-yaml tabIndex={0}>
          {answer()?.yaml ?? 'Check shows it.'}
        </pre>
      </section>
    </main>
  );
}
