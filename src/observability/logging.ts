// Structured JSON logs (pino) for the controller. Secrets never reach a log
// line: known secret-bearing fields are redacted at the logger.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function createLogger(level: string = 'info', destination?: NodeJS.WritableStream): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`--log-level: "${level}" is not a level; use one of ${LOG_LEVELS.join(', ')}`);
  }
  return pino(
    {
      level,
      base: { component: 'virtfleet' },
      redact: { paths: ['*.password', '*.token', '*.privateKey', '*.data', '*.stringData'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? process.stdout,
  );
}
