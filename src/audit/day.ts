/** One day in milliseconds: retention and archive ages are whole days of the signed clock. */
export const DAY_MS = 86_400_000;
