/**
 * The one catalogue of tokenwatch errors. Every error that can reach a user, a route or a test
 * carries a stable `code`; tests assert on codes, never on message text.
 */
/** One entry of the catalogue: what a code means and how a route answers it. */
export interface ErrorSpec {
  /** HTTP status whenever the error reaches a route. */
  readonly status: number;
  /** What the code means, as docs/errors.md lists it (the thrown message adds the particulars). */
  readonly summary: string;
}

/**
 * The catalogue (like fastify's `FST_ERR_*`): each code once, with its HTTP status and meaning.
 * docs/errors.md lists the same codes and statuses (test/errors.test.ts checks both ways).
 */
export const ERRORS = {
  ERR_CONFIG_INVALID: { status: 500, summary: 'the configuration is invalid (every bad key path)' },
  ERR_CONFIG_NOT_FOUND: { status: 500, summary: 'the configuration file cannot be read' },
  ERR_TEMPLATE_INVALID: { status: 500, summary: 'a token rule key template is invalid' },
  ERR_AUDIT_WRITE: { status: 500, summary: 'the ledger could not commit a batch' },
  ERR_AUDIT_DEGRADED: {
    status: 503,
    summary: 'the ledger cannot write durably now; retry later',
  },
  ERR_AUDIT_SCHEMA: {
    status: 500,
    summary: 'the ledger file has a schema this version cannot use',
  },
  ERR_AUDIT_CLOSED: { status: 500, summary: 'the ledger is closed (shutting down)' },
  ERR_LEDGER_INTEGRITY: {
    status: 409,
    summary: 'the ledger or a bundle does not verify against its chain, seals or anchors',
  },
  ERR_COVERAGE_INCOMPLETE: {
    status: 409,
    summary: 'several ledgers do not prove every watched node owned or stated blind for the period',
  },
  ERR_CHECKPOINT_LOG: {
    status: 500,
    summary: 'the external checkpoint log cannot be opened, read or appended to (fsync included)',
  },
  ERR_KEY_INVALID: { status: 500, summary: 'an HMAC or signing key is missing, short or unsafe' },
  ERR_WEBHOOK_BAD_REQUEST: { status: 400, summary: 'a webhook request the parser refused' },
  ERR_WEBHOOK_CONTENT_TYPE: { status: 415, summary: 'a webhook body of an unsupported media type' },
  ERR_WEBHOOK_MALFORMED: { status: 400, summary: 'a webhook body that is not the expected shape' },
  ERR_WEBHOOK_TOO_LARGE: { status: 413, summary: 'a webhook body or token over its size limit' },
  ERR_WEBHOOK_UNAUTHORIZED: {
    status: 401,
    summary: 'a webhook without the configured shared secret or bearer token',
  },
  ERR_WEBHOOK_SIGNATURE: {
    // RFC 8935 §2.3 and OIDC Back-Channel Logout §2.8 answer 400 instead (the route's dialect).
    status: 401,
    summary: 'a webhook signature (HMAC or JWS) that does not verify',
  },
  ERR_WEBHOOK_TOKEN_INVALID: { status: 400, summary: 'a SET or logout token with bad claims' },
  ERR_WEBHOOK_REPLAY: { status: 400, summary: 'a SET or logout token already received (jti)' },
  ERR_PROVIDER_POLL: { status: 502, summary: "a provider's log API could not be polled" },
  ERR_PROVIDER_KEYS_UNAVAILABLE: {
    status: 503,
    summary: "a provider's signing keys (JWKS) could not be fetched: retryable",
  },
  ERR_UNAUTHORIZED: { status: 401, summary: 'an admin request without valid credentials' },
  ERR_FORBIDDEN: { status: 403, summary: 'an admin request whose credentials lack the scope' },
  ERR_AUTH_UNAVAILABLE: {
    status: 503,
    summary: "the admin API's identity provider keys (OIDC discovery / JWKS) could not be fetched",
  },
  ERR_EXPORT_UNSEALED: {
    status: 409,
    summary: "an export's records are not sealed by a signed checkpoint yet: retry after the next",
  },
  ERR_EXPORT_BUSY: { status: 429, summary: 'an export is already running: retry when it is done' },
  ERR_EXPORT_TARGET_EXISTS: {
    status: 409,
    summary: "an export's output directory exists and is not empty",
  },
  ERR_NOT_FOUND: { status: 404, summary: 'no such route, export or file' },
  ERR_BAD_REQUEST: {
    status: 400,
    summary: 'a request parameter is invalid (named in the message)',
  },
  ERR_USAGE: { status: 400, summary: 'a CLI command was called wrongly (exit 2)' },
  ERR_SNAPSHOT_INVALID: {
    status: 500,
    summary:
      'a `correlator.snapshot` ledger record does not have the shape or bounds this version restores',
  },
  ERR_INTERNAL: { status: 500, summary: 'an unexpected failure (details only in the log)' },
} as const satisfies Record<string, ErrorSpec>;

/** Every stable error code; tests assert on these, never on message text. */
export type ErrorCode = keyof typeof ERRORS;

export interface TokenwatchErrorOptions {
  cause?: unknown;
  /** Structured context safe to log and to return to a client (never secrets). */
  details?: Record<string, unknown>;
}

export class TokenwatchError extends Error {
  readonly code: ErrorCode;
  /** From the catalogue: one status per code. */
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TokenwatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenwatchError';
    this.code = code;
    this.status = ERRORS[code].status;
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
