import { z } from 'zod';

/**
 * Configuration of the identity-provider adapters (`providers.<name>`). A provider whose section
 * is absent is off: its endpoints answer 404 and nothing polls it. Documented in
 * config/README.md; secrets can come from the environment (src/config/load.ts).
 */

/** True for `localhost`, 127.0.0.0/8 and ::1 (the only hosts allowed over plain http). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^127(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(h);
}

/**
 * Why `value` is not an acceptable issuer / API URL, or undefined when it is: https, or http to a
 * loopback address (tests). Credentials in the URL and fragments are refused.
 */
export function secureUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.hash) return 'must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'must be https (plain http only to a loopback address)';
}

const secureUrl = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((v, ctx) => {
    const problem = secureUrlProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Shared secrets and bearer tokens: long enough that guessing is not an attack. */
const secret = z.string().min(16, 'must be at least 16 characters').max(4096);

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'must be an HTTP header name')
  .transform((h) => h.toLowerCase());

/** How a poller authenticates to the provider's API: one of the two. */
const pollAuthSchema = z
  .strictObject({
    /** Static API token (Okta: sent as `SSWS <token>`; others: `Bearer <token>`). */
    apiToken: secret.optional(),
    /** OAuth client credentials (RFC 6749 §4.4) through openid-client discovery. */
    clientCredentials: z
      .strictObject({
        /** Issuer to discover; default depends on the provider (see config/README.md). */
        issuer: secureUrl.optional(),
        clientId: z.string().min(1).max(256),
        clientSecret: z.string().min(1).max(4096),
        scope: z.string().max(1024).optional(),
        /** `audience` parameter (Auth0 Management API). */
        audience: z.string().max(1024).optional(),
      })
      .optional(),
  })
  .superRefine((a, ctx) => {
    if ((a.apiToken === undefined) === (a.clientCredentials === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of apiToken or clientCredentials' });
    }
  });

const pollBase = {
  /** Poll at all (default true once a `poll` section exists). */
  enabled: z.boolean().default(true),
  /** Seconds between catch-up runs; the first runs at start-up. */
  intervalSeconds: z.number().positive().max(86_400).default(60),
  /** Provider API origin, e.g. https://dev-123.okta.com. */
  baseUrl: secureUrl,
  auth: pollAuthSchema,
  /** How far back the very first run (no cursor yet) reads, hours. */
  initialLookbackHours: z
    .number()
    .positive()
    .max(24 * 90)
    .default(24),
  /** Longest wait honoured for a 429 reset, seconds (then the run gives up until next time). */
  maxBackoffSeconds: z.number().positive().max(3600).default(120),
  /** Most pages read in one run (the rest waits for the next run). */
  maxPagesPerRun: z.number().int().min(1).max(10_000).default(100),
};

const oktaSchema = z
  .strictObject({
    /** Event Hook shared secret: the exact value Okta sends in `header`. */
    secret: secret.optional(),
    /** Header carrying the secret (Okta lets the admin name it). */
    header: headerName.default('authorization'),
    /** System Log API poller (token events are not event-hook eligible). */
    poll: z
      .strictObject({
        ...pollBase,
        /** System Log `filter`; default: the OAuth token event types. Empty: everything. */
        filter: z.string().max(8192).optional(),
        /** `limit` per page (Okta allows up to 1000). */
        pageSize: z.number().int().min(1).max(1000).default(1000),
      })
      .optional(),
  })
  .superRefine(requirePushOrPoll('secret'));

const auth0Schema = z
  .strictObject({
    /** Log Stream "Authorization Token": sent verbatim or as `Bearer <token>`. */
    token: secret.optional(),
    /** Management API `/api/v2/logs` poller. */
    poll: z
      .strictObject({
        ...pollBase,
        /** `take` per page (Auth0 allows up to 100). */
        pageSize: z.number().int().min(1).max(100).default(100),
      })
      .optional(),
  })
  .superRefine(requirePushOrPoll('token'));

const keycloakSchema = z
  .strictObject({
    /** Webhook secret of the `X-Keycloak-Signature` HMAC over the raw body. */
    secret: secret.optional(),
    /** HMAC algorithm of the signature (p2-inc keycloak-events default: sha256). */
    signatureAlgorithm: z.enum(['sha256', 'sha1']).default('sha256'),
    /** Admin REST API poller (user events and admin events). */
    poll: z
      .strictObject({
        ...pollBase,
        realm: z.string().min(1).max(255),
        /** Realm of the service account when not `realm` (e.g. `master`). */
        tokenRealm: z.string().min(1).max(255).optional(),
        userEvents: z.boolean().default(true),
        adminEvents: z.boolean().default(true),
        /** `max` per page. */
        pageSize: z.number().int().min(1).max(1000).default(100),
        /** Most events gathered in one run (the API pages newest first). */
        maxEventsPerRun: z.number().int().min(100).max(100_000).default(10_000),
      })
      .optional(),
  })
  .superRefine(requirePushOrPoll('secret'));

const audience = z.union([
  z.string().min(1).max(1024),
  z.array(z.string().min(1).max(1024)).min(1),
]);

const ssfSchema = z.strictObject({
  /** The transmitter's issuer; SETs must carry it as `iss`. */
  issuer: secureUrl,
  /** This receiver's audience value(s); a SET's `aud` must contain one. */
  audience,
  /** Where the JWKS is found: SSF transmitter metadata, OIDC or RFC 8414 discovery. */
  discovery: z.enum(['ssf', 'oidc', 'oauth2']).default('ssf'),
  /** Skip discovery and use this JWKS. */
  jwksUri: secureUrl.optional(),
  /** Expected `Authorization` header value of push requests (stream `authorization_header`). */
  authorization: secret.optional(),
  clockToleranceSeconds: z.number().int().min(0).max(600).default(60),
  /**
   * Refuse SETs whose `iat` is older than this, seconds (default 24 h). Also how long a `jti`
   * is remembered durably against replay (plus clockToleranceSeconds).
   */
  maxAgeSeconds: z
    .number()
    .int()
    .positive()
    .max(30 * 86_400)
    .default(86_400),
});

const oidcSchema = z.strictObject({
  /** The OP's issuer; logout tokens must carry it as `iss`. */
  issuer: secureUrl,
  /** This RP's client id; the logout token's `aud` must contain it. */
  clientId: z.string().min(1).max(256),
  clockToleranceSeconds: z.number().int().min(0).max(600).default(60),
  /** Refuse logout tokens whose `iat` is older than this, seconds (default 24 h); jti window. */
  maxAgeSeconds: z
    .number()
    .int()
    .positive()
    .max(30 * 86_400)
    .default(86_400),
});

/** `providers:` of the config document. */
export const providersSchema = z.strictObject({
  /** Largest webhook body, bytes (default: server.bodyLimit). */
  bodyLimit: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .optional(),
  /** Most events accepted in one delivery or API page. */
  maxEvents: z.number().int().min(1).max(100_000).default(10_000),
  /** Redelivery detection on (provider, event id), rebuilt from the ledger at start-up. */
  dedup: z
    .strictObject({
      windowHours: z
        .number()
        .positive()
        .max(24 * 90)
        .default(168),
      maxEntries: z.number().int().min(1000).max(5_000_000).default(200_000),
    })
    .prefault({}),
  /**
   * Refused webhook deliveries are `provider.rejected` records one by one up to `perSource` per
   * provider, source address and window; beyond, they are counted (exactly, by reason) in one
   * `provider.rejected_suppressed` record per source and window.
   */
  refusals: z
    .strictObject({
      perSource: z.number().int().min(1).max(100_000).default(20),
      windowSeconds: z.number().int().min(1).max(3600).default(60),
      /** Recorded one by one per provider and window across all sources; the rest: one summary. */
      total: z.number().int().min(1).max(1_000_000).default(200),
    })
    .prefault({}),
  okta: oktaSchema.optional(),
  auth0: auth0Schema.optional(),
  keycloak: keycloakSchema.optional(),
  ssf: ssfSchema.optional(),
  oidc: oidcSchema.optional(),
});

/** Validated `providers` section and its parts. */
export type ProvidersConfig = z.infer<typeof providersSchema>;
export type OktaConfig = z.infer<typeof oktaSchema>;
export type Auth0Config = z.infer<typeof auth0Schema>;
export type KeycloakConfig = z.infer<typeof keycloakSchema>;
export type SsfConfig = z.infer<typeof ssfSchema>;
export type OidcConfig = z.infer<typeof oidcSchema>;
export type PollAuthConfig = z.infer<typeof pollAuthSchema>;

function requirePushOrPoll(pushKey: string) {
  return (v: { poll?: unknown }, ctx: z.RefinementCtx): void => {
    if ((v as Record<string, unknown>)[pushKey] === undefined && v.poll === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [pushKey],
        message: `set ${pushKey} (push endpoint) or poll (API poller), or remove the section`,
      });
    }
  };
}
