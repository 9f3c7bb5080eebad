import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Asymmetric JWS algorithms accepted for admin access tokens (never `none` or HMAC). */
export const ADMIN_JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
import type { ConfigIssue } from '../errors.js';
import { secureUrlProblem } from './providers-schema.js';

/**
 * `admin`: authentication of the admin API (`/v1/findings`, `/v1/audit/records`, `/v1/reports/*`,
 * `/v1/exports`) and, optionally, of `/metrics`. Documented in config/README.md#admin.
 *
 * The admin API is authenticated when `admin.tokens` is non-empty or `admin.oidc` is set; with
 * neither (or no `admin` section at all) it answers loopback clients only, as before.
 */

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the token, 64 hex digits')
  .transform((h) => h.toLowerCase());

const secureUrl = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((v, ctx) => {
    const problem = secureUrlProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A static bearer token, by the SHA-256 of its value: the config never holds the token. */
export const adminTokenSchema = z.strictObject({
  /** Who the token belongs to; named in every `admin.access` record. */
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 _ . @ -'),
  /** Lowercase hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`). */
  sha256: sha256Hex,
});

export const adminSchema = z
  .strictObject({
    /** Static bearer tokens (hashed). `TOKENWATCH_ADMIN_TOKENS` adds more (hashed at load). */
    tokens: z.array(adminTokenSchema).default([]),
    /** OAuth 2.0 access tokens (JWT) from this issuer, checked against its JWKS. */
    oidc: z
      .strictObject({
        /** Issuer URL: discovery (`/.well-known/openid-configuration`) and the `iss` to expect. */
        issuer: secureUrl,
        /** `aud` the access token must carry (one of). */
        audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
        /** Scope every admin request needs (`scope` claim, space separated, or `scp`). */
        requiredScope: z.string().min(1).max(256).default('tokenwatch:admin'),
        /** Use this JWKS instead of the one discovery names. */
        jwksUri: secureUrl.optional(),
        /** `oidc` (OpenID Connect Discovery) or `oauth2` (RFC 8414) metadata. */
        discovery: z.enum(['oidc', 'oauth2']).default('oidc'),
        /** Accepted JWS algorithms (asymmetric only). */
        algorithms: z.array(z.enum(ADMIN_JWT_ALGORITHMS)).min(1).optional(),
        /** Clock skew tolerated for `exp` / `nbf` / `iat`, seconds. */
        clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
        /**
         * Header `typ` values accepted (RFC 9068 §2.1: `at+jwt`); add `JWT` for issuers that do
         * not type their access tokens. `logout+jwt` and `secevent+jwt` are always refused.
         */
        acceptedTypes: z
          .array(
            z
              .string()
              .min(1)
              .max(64)
              .refine(
                (t) => !/^(application\/)?(logout|secevent)\+jwt$/i.test(t),
                'logout and SET token types are never access tokens',
              ),
          )
          .min(1)
          .default(['at+jwt']),
      })
      .optional(),
    /** `/metrics` behind HTTP basic auth and/or a bearer token; unset: open (as before). */
    metrics: z
      .strictObject({
        username: z.string().min(1).max(128).optional(),
        /** SHA-256 hex of the basic-auth password. */
        passwordSha256: sha256Hex.optional(),
        /** SHA-256 hex of bearer tokens a scraper may send instead. */
        tokenSha256: z.array(sha256Hex).default([]),
      })
      .superRefine((m, ctx) => {
        if ((m.username === undefined) !== (m.passwordSha256 === undefined)) {
          ctx.addIssue({
            code: 'custom',
            message: 'username and passwordSha256 go together',
            path: ['passwordSha256'],
          });
        }
        if (m.username === undefined && m.tokenSha256.length === 0) {
          ctx.addIssue({
            code: 'custom',
            message: 'set username + passwordSha256, or tokenSha256',
          });
        }
      })
      .optional(),
    /** Where `POST /v1/exports` writes bundles (default: `exports/` beside the database). */
    exportDir: z.string().min(1).optional(),
    /** Longest period a report or export request may cover, days. */
    maxPeriodDays: z.number().int().min(1).max(3660).default(400),
    /**
     * Refused admin requests are `admin.access` records one by one up to `perSource` per source
     * address and window; beyond, they are counted and stated in one `admin.access_suppressed`
     * record per source and window (a flood cannot grow the ledger without bound).
     */
    refusals: z
      .strictObject({
        perSource: z.number().int().min(1).max(100_000).default(20),
        windowSeconds: z.number().int().min(1).max(3600).default(60),
        /** Recorded one by one per window across all sources; the rest go to one summary. */
        total: z.number().int().min(1).max(1_000_000).default(200),
      })
      .default({ perSource: 20, windowSeconds: 60, total: 200 }),
  })
  .superRefine((a, ctx) => {
    const names = new Set<string>();
    const hashes = new Set<string>();
    a.tokens.forEach((t, i) => {
      if (names.has(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', i, 'name'],
          message: `duplicate name ${t.name}`,
        });
      if (hashes.has(t.sha256))
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', i, 'sha256'],
          message: 'the same token twice',
        });
      names.add(t.name);
      hashes.add(t.sha256);
    });
  });

/** The validated `admin` config section. */
export type AdminConfig = z.infer<typeof adminSchema>;

/** True when the admin API requires credentials (otherwise: loopback clients only). */
export function adminAuthConfigured(a: AdminConfig | undefined): a is AdminConfig {
  return a !== undefined && (a.tokens.length > 0 || a.oidc !== undefined);
}

/** Shortest raw admin token accepted from the environment. */
export const MIN_ADMIN_TOKEN_LENGTH = 24;

/**
 * `TOKENWATCH_ADMIN_TOKENS=name:token,other:token2` (a bare `token` is named `env-<8 hex>`):
 * each token is hashed here, at load, and only its SHA-256 joins `admin.tokens`; the raw value
 * never reaches the config object.
 */
export function applyAdminEnv(
  out: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: ConfigIssue[],
  fromEnv: Map<string, string>,
): void {
  const raw = env.TOKENWATCH_ADMIN_TOKENS;
  if (raw === undefined || raw.trim() === '') return;
  const section = out.admin ?? {};
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    issues.push({ path: 'admin', message: 'must be a mapping' });
    return;
  }
  const admin = section as Record<string, unknown>;
  const tokens = Array.isArray(admin.tokens) ? [...(admin.tokens as unknown[])] : [];
  raw.split(',').forEach((entry, i) => {
    const item = entry.trim();
    if (item === '') return;
    const colon = item.indexOf(':');
    const token = colon < 0 ? item : item.slice(colon + 1);
    const sha256 = createHash('sha256').update(token, 'utf8').digest('hex');
    const name = colon < 0 ? `env-${sha256.slice(0, 8)}` : item.slice(0, colon);
    if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
      issues.push({
        path: `admin.tokens (TOKENWATCH_ADMIN_TOKENS entry ${i + 1})`,
        message: `tokens must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`,
      });
      return;
    }
    tokens.push({ name, sha256 });
  });
  admin.tokens = tokens;
  out.admin = admin;
  fromEnv.set('admin.tokens', 'TOKENWATCH_ADMIN_TOKENS');
}
