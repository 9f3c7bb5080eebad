/**
 * Redis Cluster key slots (CRC16/XMODEM of the key, or of its `{hash tag}`, mod 16384), to
 * address a key to one given master: the read sampler's window markers must be served by the
 * node whose MONITOR stream they mark (any other node answers MOVED).
 */
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(s: string): number {
  let crc = 0;
  for (let i = 0; i < s.length; i++)
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ s.charCodeAt(i)) & 0xff] as number);
  return crc;
}

/** The slot of a (latin1 / ASCII) key, honouring the first non-empty `{hash tag}`. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}

/** A short hash tag whose slot lies in `ranges` (inclusive), or undefined when there is none. */
export function tagForSlots(ranges: readonly (readonly [number, number])[]): string | undefined {
  if (ranges.length === 0) return undefined;
  for (let i = 0; i < 200_000; i++) {
    const tag = `tw${i}`;
    const slot = keySlot(`{${tag}}`);
    if (ranges.some(([a, b]) => slot >= a && slot <= b)) return tag;
  }
  return undefined;
}
