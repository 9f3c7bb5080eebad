import type Database from 'better-sqlite3';

/**
 * The dedup look-ups of provider ingestion (src/providers/ingest/seen-events.ts): the
 * (provider, event id) pairs of committed `provider.*` records. The records ARE the dedup
 * markers, so a record and its marker commit atomically.
 */

/** A committed provider record's dedup pair; either may be absent in a malformed record. */
export interface ProviderEventId {
  provider: unknown;
  eventId: unknown;
}

/** The exclusive upper bound of the types starting with `prefix` ('provider.' -> 'provider/'). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * The newest `limit` records whose type starts with `prefix` (`provider.`) observed at or after
 * `since`, newest first (range scan of the records_type_seq index).
 */
export function providerEventIdsSince(
  db: Database.Database,
  prefix: string,
  since: number,
  limit: number,
): ProviderEventId[] {
  return db
    .prepare(
      `SELECT json_extract(attrs, '$.provider') AS provider, json_extract(attrs, '$.eventId') AS eventId
         FROM records
        WHERE type >= ? AND type < ? AND time >= ?
        ORDER BY seq DESC
        LIMIT ?`,
    )
    .all(prefix, prefixEnd(prefix), since, limit) as ProviderEventId[];
}

/** The records of type `prefix*` committed after `afterSeq` (a batch that failed part-way). */
export function providerEventIdsAfter(
  db: Database.Database,
  prefix: string,
  afterSeq: number,
): ProviderEventId[] {
  return db
    .prepare(
      `SELECT json_extract(attrs, '$.provider') AS provider, json_extract(attrs, '$.eventId') AS eventId
         FROM records WHERE seq > ? AND type >= ? AND type < ?`,
    )
    .all(afterSeq, prefix, prefixEnd(prefix)) as ProviderEventId[];
}
