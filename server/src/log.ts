/** The server's one logger (pino, JSON lines on stdout). Level from LOG_LEVEL (default "info"). */
import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  return destination ? pino({ level, base: { app: 'dnp' } }, destination) : pino({ level, base: { app: 'dnp' } });
}
