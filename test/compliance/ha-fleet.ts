import { Fleet, type InstanceFiles } from '../audit/instances.js';

/**
 * Node n0. A owns epoch 1 and records fp1..fp3, but publishes committed "1.1.0" only, then
 * dies. B takes over (epoch 2, from "1.1.0"): replays fp2, fp3 (also in A's ledger) and fp4,
 * records fp5 live, is paused past its lease and fenced; its stale writes fp6, fp8, fp9 carry
 * epoch 2. A takes over (epoch 3, from "2.1.3"), replays fp7 and fp6, records fp8 live, and a
 * reconcile's token.vanished of fp1 without a position. Nine distinct token events.
 */
export function haFleet(): Record<string, InstanceFiles> {
  return new Fleet()
    .start('A', 'B')
    .acquired('A', 1_000, 'n0', 1, null, null)
    .token('A', 2_000, 'n0', 1, '1.1.0.0')
    .token('A', 3_000, 'n0', 2, '1.1.1.0')
    .token('A', 4_000, 'n0', 3, '1.1.2.0')
    .acquired('B', 10_000, 'n0', 2, [1, 'A'], '1.1.0', 3)
    .token('B', 10_001, 'n0', 2, '1.1.1.0', 'token.written', 2)
    .token('B', 10_002, 'n0', 3, '1.1.2.0', 'token.written', 2)
    .token('B', 10_003, 'n0', 4, '1.1.3.0', 'token.written', 2)
    .token('B', 12_000, 'n0', 5, '2.1.0.0')
    .fenced('B', 20_000, 'n0', 2)
    .acquired('A', 20_500, 'n0', 3, [2, 'B'], '2.1.3', 2)
    .token('A', 20_501, 'n0', 7, '2.1.4.0', 'token.written', 3)
    .token('A', 20_502, 'n0', 6, '2.1.5.0', 'token.written', 3)
    .token('B', 21_000, 'n0', 6, '2.1.5.0', 'token.written', 2)
    .token('A', 22_000, 'n0', 8, '2.1.6.0', 'token.written', 3)
    .token('B', 22_001, 'n0', 8, '2.1.6.0', 'token.written', 2)
    .token('B', 23_000, 'n0', 9, '2.1.9.0', 'token.written', 2)
    .token('A', 25_000, 'n0', 1, undefined, 'token.vanished')
    .note('A', 30_000)
    .note('B', 30_000)
    .close();
}
