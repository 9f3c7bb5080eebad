/**
 * Where the hash chain stands: the last seq, the chain hash after it, and the clock its batch
 * was written at (the next batch states a backwards jump against it). One value, replaced
 * whole, never field by field: the three must always describe the same record.
 */
export interface ChainHead {
  readonly seq: number;
  readonly chain: Buffer;
  /** The clock of the batch that wrote `seq`; undefined before the first write of a run. */
  readonly clock: number | undefined;
}

/** The head a written batch leaves (its last seq, chain and clock), without the batch itself. */
export function headOf(w: ChainHead): ChainHead {
  return { seq: w.seq, chain: w.chain, clock: w.clock };
}
