/**
 * The one catalogue of tokenwatch errors. Every error that can reach a user, a route or a test
 * carries a stable `code`; tests assert on codes, never on message text.
 */
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_NOT_FOUND'
  | 'ERR_TEMPLATE_INVALID'
  | 'ERR_REDIS_UNAVAILABLE'
  | 'ERR_NOTIFICATIONS_DISABLED'
  | 'ERR_AUDIT_WRITE'
  | 'ERR_AUDIT_DEGRADED'
  | 'ERR_AUDIT_SCHEMA'
  | 'ERR_AUDIT_CLOSED'
  | 'ERR_LEDGER_INTEGRITY'
  /** The external checkpoint log cannot be opened, read or appended to (fsync included). */
  | 'ERR_CHECKPOINT_LOG'
  | 'ERR_KEY_INVALID'
  | 'ERR_WEBHOOK_BAD_REQUEST'
  | 'ERR_WEBHOOK_CONTENT_TYPE'
  | 'ERR_WEBHOOK_MALFORMED'
  | 'ERR_WEBHOOK_TOO_LARGE'
  | 'ERR_WEBHOOK_UNAUTHORIZED'
  | 'ERR_WEBHOOK_SIGNATURE'
  | 'ERR_WEBHOOK_TOKEN_INVALID'
  | 'ERR_WEBHOOK_REPLAY'
  | 'ERR_PROVIDER_DISABLED'
  | 'ERR_PROVIDER_POLL'
  /** A provider's signing keys (JWKS) could not be fetched: retryable, not the sender's fault. */
  | 'ERR_PROVIDER_KEYS_UNAVAILABLE'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  /** The admin API's identity provider keys (OIDC discovery / JWKS) could not be fetched (503). */
  | 'ERR_AUTH_UNAVAILABLE'
  /** An export's records are not sealed by a signed checkpoint yet (409: retry after the next one). */
  | 'ERR_EXPORT_UNSEALED'
  | 'ERR_NOT_FOUND'
  | 'ERR_BAD_REQUEST'
  | 'ERR_USAGE'
  /** A `correlator.snapshot` ledger record does not have the shape or bounds this version restores. */
  | 'ERR_SNAPSHOT_INVALID'
  | 'ERR_INTERNAL';

export interface TokenwatchErrorOptions {
  cause?: unknown;
  /** HTTP status when this error reaches a route. */
  status?: number;
  /** Structured context safe to log and to return to a client (never secrets). */
  details?: Record<string, unknown>;
}

export class TokenwatchError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TokenwatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenwatchError';
    this.code = code;
    this.status = options.status ?? 500;
    this.details = options.details;
  }
}

/** One problem found while validating configuration, with the path of the offending key. */
export interface ConfigIssue {
  path: string;
  message: string;
}

export class ConfigError extends TokenwatchError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options: TokenwatchErrorOptions = {}) {
    super(
      'ERR_CONFIG_INVALID',
      `invalid configuration:\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
      options,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function isTokenwatchError(err: unknown): err is TokenwatchError {
  return err instanceof TokenwatchError;
}
