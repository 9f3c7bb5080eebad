/** One index rule's result of an index reconciliation (src/keyspace/index-reconcile.ts). */
export interface IndexObservation {
  index: string;
  kind: string;
  members: number;
  orphans: number;
  keysWithOrphans: number;
  /** HMAC fingerprints of some orphaned tokens; never raw members. */
  fingerprints: readonly string[];
}
