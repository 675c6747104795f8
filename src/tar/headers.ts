// One 512-byte tar header block: field layout shared by v7, ustar (POSIX.1-1988), GNU and PAX.
//
//   off  len  field          off  len  field
//     0  100  name           257    6  magic ("ustar\0" POSIX, "ustar " GNU, zeros v7)
//   100    8  mode           263    2  version ("00" POSIX, " \0" GNU)
//   108    8  uid            265   32  uname
//   116    8  gid            297   32  gname
//   124   12  size           329    8  devmajor
//   136   12  mtime          337    8  devminor
//   148    8  chksum         345  155  prefix (POSIX only; GNU keeps atime/ctime etc. there)
//   156    1  typeflag
//   157  100  linkname
//
// Numeric fields are octal ASCII (leading spaces/zeros, ended by NUL or space) or, as a GNU
// extension for values that do not fit, base-256: first byte 0x80 (positive) or 0xff
// (negative, two's complement), the remaining bytes big-endian.

import { TarError } from "./errors.ts";

export const BLOCK_SIZE = 512;

export type HeaderFormat = "v7" | "ustar" | "gnu";

/**
 * The fields of one header block, undecoded beyond bytes → byte strings and numbers. uname and
 * gname are not read: ownership is the numeric uid/gid, as container runtimes apply it, and
 * decoding two names per entry was ~3 ms over Debian's 12k headers.
 */
export interface RawHeader {
  /** name, or prefix + "/" + name for ustar; a byte string (one char per byte). */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  format: HeaderFormat;
}

/** True when all 512 bytes at `off` are zero (an end-of-archive block). */
export function isZeroBlock(block: Uint8Array, off = 0): boolean {
  for (let i = off; i < off + BLOCK_SIZE; i += 1) if (block[i] !== 0) return false;
  return true;
}

// Bun's Buffer has Node's latin1Slice, which decodes bytes 1:1 to chars natively and accepts
// any Uint8Array as `this`; fall back to a loop elsewhere.
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

/** NUL-terminated field as a byte string. */
export function fieldString(block: Uint8Array, off: number, len: number): string {
  let end = off;
  const limit = off + len;
  while (end < limit && block[end] !== 0) end += 1;
  if (end === off) return "";
  if (latin1Slice) return latin1Slice.call(block, off, end);
  let s = "";
  for (let i = off; i < end; i += 1) s += String.fromCharCode(block[i]!);
  return s;
}

/**
 * A numeric field: octal ASCII or GNU base-256. Returns NaN when the field holds
 * something else, so callers can name the field in their error.
 */
export function parseNumeric(block: Uint8Array, off: number, len: number): number {
  const first = block[off]!;
  if (first & 0x80) {
    if (first & 0x40) {
      // Negative (GNU writes 0xff first): two's complement over the field, marker bit included.
      let v = 0;
      for (let i = off; i < off + len; i += 1) v = v * 256 + (~block[i]! & (i === off ? 0x7f : 0xff));
      return -(v + 1);
    }
    // Multiplication, not shifts, so values beyond 2^32 stay exact up to 2^53.
    let value = first & 0x7f;
    for (let i = off + 1; i < off + len; i += 1) value = value * 256 + block[i]!;
    return value;
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0x30)) i += 1; // leading spaces and zeros
  let value = 0;
  let digits = 0;
  for (; i < end; i += 1) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return NaN;
    value = value * 8 + (c - 0x30);
    digits += 1;
  }
  // Only terminators may follow the digits.
  for (; i < end; i += 1) {
    const c = block[i]!;
    if (c !== 0 && c !== 0x20) return NaN;
  }
  return digits === 0 ? 0 : value;
}


// The word view of the last buffer headers were summed in: headers come 512 bytes apart in the
// same read buffer, and a view per header would be an allocation per header.
let viewOf: Uint8Array | null = null;
let viewWords: Int32Array | null = null;

/** Sum of the 512 bytes of the block at `off`. */
function byteSum(block: Uint8Array, off: number): number {
  if (block !== viewOf) {
    viewOf = block;
    viewWords = (block.byteOffset & 3) === 0 ? new Int32Array(block.buffer, block.byteOffset, block.length >>> 2) : null;
  }
  const words = viewWords;
  if (words === null || (off & 3) !== 0) {
    let sum = 0;
    for (let i = off; i < off + BLOCK_SIZE; i += 1) sum += block[i]!;
    return sum;
  }
  // Four bytes per step: two 16-bit lanes each for the even and the odd bytes. 128 words of at
  // most 255 per byte stay below 2^16 per lane, so no lane carries into the next. (The lanes'
  // order does not matter for a sum, so this holds on either endianness.) Int32 words keep the
  // arithmetic in int32 in the JIT (see crc32c.ts).
  let even = 0;
  let odd = 0;
  const first = off >>> 2;
  for (let w = first; w < first + BLOCK_SIZE / 4; w++) {
    const v = words[w]!;
    even += v & 0x00ff00ff;
    odd += (v >>> 8) & 0x00ff00ff;
  }
  return (even & 0xffff) + (even >>> 16) + (odd & 0xffff) + (odd >>> 16);
}

function byteSum8(block: Uint8Array, off: number): number {
  let sum = 0;
  for (let i = off; i < off + 8; i += 1) sum += block[i]!;
  return sum;
}

/** Header checksum as stored, and the unsigned and signed sums computed with the field as spaces. */
export function verifyChecksum(block: Uint8Array, off = 0): boolean {
  const stored = parseNumeric(block, off + 148, 8);
  if (Number.isNaN(stored)) return false;
  const unsigned = byteSum(block, off) - byteSum8(block, off + 148) + 8 * 0x20; // the checksum field counts as spaces
  if (stored === unsigned) return true;
  // Some historic tars summed signed chars; accept both like GNU tar does.
  let high = 0;
  for (let i = off; i < off + BLOCK_SIZE; i += 1) if ((i < off + 148 || i >= off + 156) && block[i]! >= 0x80) high += 1;
  return stored === unsigned - 256 * high;
}

/** Names the compression when the bytes start with a gzip, zstd, xz or bzip2 magic number. */
export function compressionOf(block: Uint8Array, off = 0): string | null {
  const b = (i: number) => block[off + i];
  if (b(0) === 0x1f && b(1) === 0x8b) return "gzip";
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return "zstd";
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a) return "xz";
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) return "bzip2";
  return null;
}

function headerFormat(block: Uint8Array, off: number): HeaderFormat {
  const m = (i: number) => block[off + 257 + i];
  if (m(0) === 0x75 && m(1) === 0x73 && m(2) === 0x74 && m(3) === 0x61 && m(4) === 0x72) {
    // "ustar\0" + "00" is POSIX; "ustar " + " \0" is GNU.
    if (m(5) === 0x20) return "gnu";
    return "ustar";
  }
  return "v7";
}

/**
 * Decodes one non-zero header block at `off`. Throws TarError (naming the member as far as the
 * name field can be read) on a checksum mismatch or an unreadable numeric field.
 */
export function parseHeader(block: Uint8Array, off: number, streamOffset: number): RawHeader {
  const format = headerFormat(block, off);
  let name = fieldString(block, off, 100);
  if (format === "ustar") {
    const prefix = fieldString(block, off + 345, 155);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  if (!verifyChecksum(block, off)) {
    const compressed = streamOffset === 0 ? compressionOf(block, off) : null;
    if (compressed) throw new TarError(null, `input is ${compressed}-compressed; decompress it first (e.g. ${compressed} -dc file | banger ... -)`);
    throw new TarError(name, `header checksum mismatch (header at byte ${streamOffset}); not a tar file, or corrupted`);
  }
  const num = (field: string, at: number, len: number): number => {
    const v = parseNumeric(block, off + at, len);
    if (Number.isNaN(v)) throw new TarError(name, `invalid numeric ${field} field in header at byte ${streamOffset}`);
    return v;
  };
  const typeflag = String.fromCharCode(block[off + 156]!);
  const hasUstarFields = format !== "v7";
  return {
    name,
    mode: num("mode", 100, 8),
    uid: num("uid", 108, 8),
    gid: num("gid", 116, 8),
    size: num("size", 124, 12),
    mtime: num("mtime", 136, 12),
    typeflag,
    linkname: fieldString(block, off + 157, 100),
    devmajor: hasUstarFields && (typeflag === "3" || typeflag === "4") ? num("devmajor", 329, 8) : 0,
    devminor: hasUstarFields && (typeflag === "3" || typeflag === "4") ? num("devminor", 337, 8) : 0,
    format,
  };
}
