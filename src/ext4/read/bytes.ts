// Little-endian field access on Uint8Array views, for parsing on-disk ext4 structures.

export function u8(b: Uint8Array, off: number): number {
  return b[off]!;
}

export function u16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export function u32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function s32(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
}

/** Combines a low 32-bit and a high part into one JS number (exact below 2^53). */
export function hiLo(lo: number, hi: number): number {
  return hi * 0x1_0000_0000 + lo;
}

export function le32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  out[0] = value & 0xff;
  out[1] = (value >>> 8) & 0xff;
  out[2] = (value >>> 16) & 0xff;
  out[3] = (value >>> 24) & 0xff;
  return out;
}

export function le64(value: number): Uint8Array {
  const out = new Uint8Array(8);
  out.set(le32(value >>> 0), 0);
  out.set(le32(Math.floor(value / 0x1_0000_0000) >>> 0), 4);
  return out;
}

/** NUL-terminated fixed-size field as a byte string (one char per byte). */
export function cString(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString("latin1");
}
