import { z } from 'zod';

/**
 * Several instances (issue #20, docs/ha.md): leases per watched node on a coordination Redis,
 * hot standbys, takeover. Off by default: one instance records everything, as before.
 */
export const coordinationSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** The coordination Redis; unset: the watched deployment itself (`redis.*`). */
    redis: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .optional(),
    /** Prefix of every coordination key (leases, epochs, instances, markers). */
    keyPrefix: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[^{}\s]+$/, 'no braces or spaces (the node id is put in a hash tag)')
      .default('tokenwatch:'),
    /** This instance's id in leases and records; unset: `<hostname>-<pid>-<random>`. */
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1-128 of A-Z a-z 0-9 _ . : -')
      .optional(),
    /** Lease time to live, ms: an owner that stops renewing loses its nodes after this. */
    leaseMs: z.number().int().min(500).max(600_000).default(5000),
    /** How often leases and the registration are renewed, ms; unset: leaseMs / 3. */
    renewEveryMs: z.number().int().min(50).max(300_000).optional(),
    /**
     * An owner stops recording this long before its lease could have expired on the server,
     * ms (local monotonic deadline: docs/ha.md, clock drift).
     */
    safetyMs: z.number().int().min(0).max(60_000).default(500),
    /** How often the owner of a node writes a stream marker on it, ms. */
    markerEveryMs: z.number().int().min(10).max(60_000).default(250),
    /** What a standby keeps for a takeover, per node. */
    standby: z
      .strictObject({
        maxEvents: z.number().int().min(1).max(10_000_000).default(200_000),
        maxAgeMs: z.number().int().min(100).max(3_600_000).default(60_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.safetyMs >= c.leaseMs) {
      ctx.addIssue({ code: 'custom', path: ['safetyMs'], message: 'must be less than leaseMs' });
    }
    const renew = c.renewEveryMs ?? Math.floor(c.leaseMs / 3);
    if (renew >= c.leaseMs - c.safetyMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['renewEveryMs'],
        message:
          'must be less than leaseMs - safetyMs (an owner would fence itself between renewals)',
      });
    }
  });

export type CoordinationConfig = z.infer<typeof coordinationSchema>;
