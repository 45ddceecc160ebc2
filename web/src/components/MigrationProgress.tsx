// How far a live migration is, from status.migration (the controller copies libvirt's job
// statistics there while it runs): memory and disks sent of what there is to send, and the
// disks alone when they are copied. Gone with status.migration when the migration ends.
import { Show } from 'solid-js';

interface Migration {
  source?: string;
  target?: string;
  storage?: string;
  dataTotalBytes?: number;
  dataRemainingBytes?: number;
  diskTotalBytes?: number;
  diskRemainingBytes?: number;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

function Bar(props: { label: string; total: number | undefined; remaining: number | undefined }) {
  const sent = () => Math.max(0, (props.total ?? 0) - (props.remaining ?? props.total ?? 0));
  return (
    <Show when={props.total !== undefined && props.total > 0}>
      <div class="progress-line">
        <label>
          {props.label}{' '}
          <progress max={props.total} value={sent()}>
            {Math.round((sent() / (props.total ?? 1)) * 100)}%
          </progress>{' '}
          <span data-progress={props.label}>
            {MiB(sent())} of {MiB(props.total ?? 0)}
          </span>
        </label>
      </div>
    </Show>
  );
}

export function MigrationProgress(props: { migration: Migration | undefined }) {
  return (
    <Show when={props.migration}>
      {(migration) => (
        <section aria-label="migration progress" class="migration-progress">
          <h2>Migrating</h2>
          <p>
            from {migration().source} to {migration().target}
            <Show when={migration().storage}>; disks: {migration().storage}</Show>
            <Show when={migration().dataTotalBytes === undefined}> (starting: no figures from libvirt yet)</Show>
          </p>
          <Bar label="sent" total={migration().dataTotalBytes} remaining={migration().dataRemainingBytes} />
          <Bar label="disks copied" total={migration().diskTotalBytes} remaining={migration().diskRemainingBytes} />
        </section>
      )}
    </Show>
  );
}
