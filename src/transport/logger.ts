// Loggers for the transport: the default writes warnings and errors to stderr (a refused
// handshake or a malformed frame must be visible without configuration), and a silent one
// for tests that provoke those on purpose.
import type { TransportLogger } from './types.js';

export function consoleLogger(nodeId: string): TransportLogger {
  const write = (level: string, message: string, fields?: Readonly<Record<string, unknown>>): void => {
    const suffix = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
    process.stderr.write(`[transport ${nodeId}] ${level} ${message}${suffix}\n`);
  };
  return {
    debug: () => {},
    info: () => {},
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

export const silentLogger: TransportLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
