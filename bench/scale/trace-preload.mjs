// bench/scale --trace: loaded into the controller with `node --import`, it subscribes to the
// runtime's timing probes (src/runtime/trace.ts) and appends one JSON line per record to
// $VIRTFLEET_TRACE_FILE. Plain JavaScript: it runs in the compiled controller as shipped.
import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';

const file = process.env.VIRTFLEET_TRACE_FILE;
if (file) {
  let lines = [];
  const flush = () => {
    if (lines.length === 0) return;
    appendFileSync(file, lines.join(''));
    lines = [];
  };
  for (const name of [
    'virtfleet:kube:request',
    'virtfleet:informer:event',
    'virtfleet:workqueue:add',
    'virtfleet:reconcile',
    'virtfleet:hypervisor:call',
  ]) {
    subscribe(name, (message) =>
      lines.push(`${JSON.stringify({ ch: name.split(':').slice(1).join(':'), ...message })}\n`),
    );
  }
  setInterval(flush, 500).unref();
  process.on('exit', flush);
}
