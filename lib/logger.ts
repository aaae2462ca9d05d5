// Structured JSON logs (pino). Each line names the component and, where there is one,
// the email (bucket/key) or account it is about, never message bodies or secrets.
import pino from 'pino';

export const logger = pino({
  level: process.env.LOG_LEVEL || 'info',
  base: { service: 'mailroom' },
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: { paths: ['password', '*.password', 'pass', '*.pass', 'secret', '*.secret'], censor: '[redacted]' },
});

export function componentLogger(component: string): pino.Logger {
  return logger.child({ component });
}
