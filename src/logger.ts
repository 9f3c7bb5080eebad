import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * The service logger. Nothing secret is ever passed to it (fingerprints only); the redact list
 * is a second line of defence for fields that could carry credentials.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tokenwatch' },
      redact: {
        paths: [
          'password',
          'token',
          'secret',
          'authorization',
          '*.authorization',
          'req.headers.authorization',
          'req.headers.cookie',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
