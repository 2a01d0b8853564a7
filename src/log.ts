// Structured logs: JSON in a cluster (or when asked), readable lines in a terminal.
// Lines about a LivePatch or a node carry `livePatch` and `node` fields.
import winston from 'winston';

export type LogFormat = 'json' | 'text';
export type Logger = winston.Logger;

export interface LogOptions {
  readonly component: string;
  readonly format?: LogFormat;
  readonly level?: string;
}

export function defaultLogFormat(): LogFormat {
  const env = process.env['LOG_FORMAT'];
  if (env === 'json' || env === 'text') return env;
  return process.stderr.isTTY ? 'text' : 'json';
}

const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, component, ...fields } = info;
  const extra = Object.entries(fields)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp)} ${level} [${String(component)}] ${String(message)}${extra ? ` ${extra}` : ''}`;
});

export function createLogger(opts: LogOptions): Logger {
  const format = opts.format ?? defaultLogFormat();
  return winston.createLogger({
    level: opts.level ?? process.env['LOG_LEVEL'] ?? 'info',
    defaultMeta: { component: opts.component },
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      format === 'json'
        ? winston.format.json()
        : winston.format.combine(winston.format.colorize(), textFormat),
    ),
    // stderr keeps stdout free for what a command prints on purpose (e.g. KUBECONFIG=...).
    transports: [
      new winston.transports.Console({
        stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
      }),
    ],
  });
}
