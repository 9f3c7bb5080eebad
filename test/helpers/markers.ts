import { MarkerAuth } from '../../src/keyspace/marker-auth.js';
import {
  markerKey,
  StreamPositionTracker,
  type StreamPositionTrackerOptions,
} from '../../src/keyspace/stream-position.js';

/** The marker tags of one node under a test key (tests of stream positions). */
export const TEST_MARKER_AUTH = new MarkerAuth([
  { id: 't', key: Buffer.from('marker-test-key-0123456789', 'utf8') },
]).forNode('test-node');

/** A genuine marker key `(epoch, n)` of TEST_MARKER_AUTH's node. */
export function mk(epoch: number, n: number, tag?: string, keyPrefix?: string): string {
  return markerKey(epoch, n, TEST_MARKER_AUTH.tag(epoch, n), tag, keyPrefix);
}

/** A tracker that checks tags with TEST_MARKER_AUTH. */
export function tracker(o: Partial<StreamPositionTrackerOptions> = {}): StreamPositionTracker {
  return new StreamPositionTracker({ auth: TEST_MARKER_AUTH, ...o });
}
