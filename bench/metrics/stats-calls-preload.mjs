// bench/metrics: loaded into the controller with `node --import`, it counts the controller's bulk
// domain statistics calls (src/runtime/trace.ts's hypervisor-call probe, operation "read domain
// statistics") and writes each as a JSON line { uri, ms, error? } to $VIRTFLEET_STATS_CALLS_FILE.
import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';

const file = process.env.VIRTFLEET_STATS_CALLS_FILE;
if (file) {
  subscribe('virtfleet:hypervisor:call', (message) => {
    if (message.operation !== 'read domain statistics') return;
    appendFileSync(file, `${JSON.stringify({ uri: message.uri, ms: message.ms, error: message.error })}\n`);
  });
}
