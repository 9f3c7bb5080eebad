import { describe, expect, it } from 'vitest';
import { mergeFlags, missingFlags } from '../../src/keyspace/notifications.js';

describe('notify-keyspace-events flags', () => {
  it('finds what is missing, expanding the A alias', () => {
    expect(missingFlags('')).toBe('Eg$xeh');
    expect(missingFlags('KEA')).toBe('');
    expect(missingFlags('AK')).toBe('E');
    expect(missingFlags('Ex')).toBe('g$eh');
  });

  it('merges without dropping the user flags', () => {
    expect(mergeFlags('Kl')).toBe('KlEg$xeh');
    expect(mergeFlags('KEA')).toBe('KEA');
    expect(mergeFlags('Em')).toBe('Emg$xeh');
  });
});
