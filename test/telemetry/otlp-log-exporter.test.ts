import { describe, expect, it } from 'vitest';
import { rejectionOf } from '../../src/telemetry/otlp-log-exporter.js';

describe('rejectionOf (OTLP logs partial success)', () => {
  it('reads rejected_log_records as a JSON number or an int64 decimal string', () => {
    expect(rejectionOf({ partialSuccess: { rejectedLogRecords: 3, errorMessage: 'x' } })).toEqual({
      records: 3,
      message: 'x',
    });
    expect(
      rejectionOf({
        partialSuccess: { rejectedLogRecords: '12' as unknown as number },
      }),
    ).toEqual({ records: 12, message: '' });
  });

  it('a warning without rejected records is still reported, with 0 records', () => {
    expect(rejectionOf({ partialSuccess: { errorMessage: 'slow down' } })).toEqual({
      records: 0,
      message: 'slow down',
    });
  });

  it('is undefined for a full success: no field, an empty one, or zero and no message', () => {
    expect(rejectionOf({})).toBeUndefined();
    expect(rejectionOf(undefined)).toBeUndefined();
    expect(rejectionOf({ partialSuccess: {} })).toBeUndefined();
    expect(rejectionOf({ partialSuccess: { rejectedLogRecords: 0, errorMessage: '' } })).toBe(
      undefined,
    );
  });

  it('ignores a count that is not a positive safe integer and caps the message', () => {
    expect(
      rejectionOf({ partialSuccess: { rejectedLogRecords: 'many' as unknown as number } }),
    ).toBeUndefined();
    expect(rejectionOf({ partialSuccess: { rejectedLogRecords: -1 } })).toBeUndefined();
    const r = rejectionOf({
      partialSuccess: { rejectedLogRecords: 1, errorMessage: 'e'.repeat(900) },
    });
    expect(r?.message).toHaveLength(500);
  });
});
