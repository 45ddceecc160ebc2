// A logger whose JSON lines tests can read back.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logging.js';

export interface CapturedLogs {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
}

export function captureLogs(level = 'debug'): CapturedLogs {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger(level, sink), lines: () => lines };
}
