// The ext4 directory-entry hash used by hash-indexed (htree) directories.
// Semantics follow the kernel's "Hash Tree Directories" documentation: three algorithms
// (legacy, half-MD4, TEA), each in a signed-char and an unsigned-char flavour (selected by
// s_flags), seeded by s_hash_seed (or a fixed default seed when it is all zero).

import { HASH_HALF_MD4, HASH_LEGACY, HASH_TEA } from "./constants.ts";

export interface DirHash {
  /** Major hash, lowest bit cleared (the bit marks collisions in index entries). */
  hash: number;
  /** Minor hash (0 for the legacy algorithm). */
  minorHash: number;
}

/** MD4 initial state; used when s_hash_seed is all zero. */
const DEFAULT_SEED = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/** The largest major hash a name may have: 0xfffffffe is reserved as end-of-directory. */
const HTREE_EOF_32BIT = 0x7fffffff;

/** Character value as C would see it: signed char sign-extends, unsigned char does not. */
function charValue(b: number, unsigned: boolean): number {
  return unsigned ? b : (b << 24) >> 24;
}

/**
 * Packs up to `words * 4` bytes of `name[start..]` into `out[0..words)` big-endian-ish as the
 * kernel's str2hashbuf does: each word starts from a padding pattern derived from the
 * (remaining) length and shifts characters in from the right; missing words get the pattern.
 */
function packWords(
  name: Uint8Array,
  start: number,
  remaining: number,
  words: number,
  unsigned: boolean,
  out: Int32Array,
): void {
  // Names are at most 255 bytes, so the remaining length fits the low byte of each half.
  let pad = remaining | (remaining << 8);
  pad = pad | (pad << 16);
  let val = pad;
  const len = Math.min(remaining, words * 4);
  let w = 0;
  for (let i = 0; i < len; i++) {
    val = (charValue(name[start + i]!, unsigned) + (val << 8)) | 0;
    if (i % 4 === 3) {
      out[w++] = val;
      val = pad;
    }
  }
  if (w < words) out[w++] = val;
  while (w < words) out[w++] = pad;
}

function rotl(x: number, s: number): number {
  return (x << s) | (x >>> (32 - s));
}

const K2 = 0x5a827999;
const K3 = 0x6ed9eba1;

// MD4 round functions (RFC 1320): F selects, G is majority, H is parity.
function mF(x: number, y: number, z: number): number {
  return z ^ (x & (y ^ z));
}
function mG(x: number, y: number, z: number): number {
  return (x & y) | (x & z) | (y & z);
}
function mH(x: number, y: number, z: number): number {
  return x ^ y ^ z;
}
function step(a: number, f: number, w: number, s: number): number {
  return rotl((a + f + w) | 0, s);
}

/** Reduced-round MD4 (three rounds of eight steps) over eight input words; updates `buf`. */
function halfMd4Transform(buf: Int32Array, x: Int32Array): void {
  let a = buf[0]!;
  let b = buf[1]!;
  let c = buf[2]!;
  let d = buf[3]!;
  // Round 1: words in order, shifts 3 7 11 19.
  a = step(a, mF(b, c, d), x[0]!, 3);
  d = step(d, mF(a, b, c), x[1]!, 7);
  c = step(c, mF(d, a, b), x[2]!, 11);
  b = step(b, mF(c, d, a), x[3]!, 19);
  a = step(a, mF(b, c, d), x[4]!, 3);
  d = step(d, mF(a, b, c), x[5]!, 7);
  c = step(c, mF(d, a, b), x[6]!, 11);
  b = step(b, mF(c, d, a), x[7]!, 19);
  // Round 2: words 1 3 5 7 0 2 4 6 plus K2, shifts 3 5 9 13.
  a = step(a, mG(b, c, d), x[1]! + K2, 3);
  d = step(d, mG(a, b, c), x[3]! + K2, 5);
  c = step(c, mG(d, a, b), x[5]! + K2, 9);
  b = step(b, mG(c, d, a), x[7]! + K2, 13);
  a = step(a, mG(b, c, d), x[0]! + K2, 3);
  d = step(d, mG(a, b, c), x[2]! + K2, 5);
  c = step(c, mG(d, a, b), x[4]! + K2, 9);
  b = step(b, mG(c, d, a), x[6]! + K2, 13);
  // Round 3: words 3 7 2 6 1 5 0 4 plus K3, shifts 3 9 11 15.
  a = step(a, mH(b, c, d), x[3]! + K3, 3);
  d = step(d, mH(a, b, c), x[7]! + K3, 9);
  c = step(c, mH(d, a, b), x[2]! + K3, 11);
  b = step(b, mH(c, d, a), x[6]! + K3, 15);
  a = step(a, mH(b, c, d), x[1]! + K3, 3);
  d = step(d, mH(a, b, c), x[5]! + K3, 9);
  c = step(c, mH(d, a, b), x[0]! + K3, 11);
  b = step(b, mH(c, d, a), x[4]! + K3, 15);
  buf[0] = buf[0]! + a;
  buf[1] = buf[1]! + b;
  buf[2] = buf[2]! + c;
  buf[3] = buf[3]! + d;
}

const TEA_DELTA = 0x9e3779b9;

/** 16 rounds of TEA over the first two state words with a four-word key `k`. */
function teaTransform(buf: Int32Array, k: Int32Array): void {
  let sum = 0;
  let b0 = buf[0]!;
  let b1 = buf[1]!;
  const [a, b, c, d] = [k[0]!, k[1]!, k[2]!, k[3]!];
  for (let n = 0; n < 16; n++) {
    sum = (sum + TEA_DELTA) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) >>> 0) ^ ((b1 + sum) >>> 0) ^ (((b1 >>> 5) + b) >>> 0))) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) >>> 0) ^ ((b0 + sum) >>> 0) ^ (((b0 >>> 5) + d) >>> 0))) >>> 0;
  }
  buf[0] = (buf[0]! + b0) >>> 0;
  buf[1] = (buf[1]! + b1) >>> 0;
}

/** The legacy ("dx_hack") hash. */
function legacyHash(name: Uint8Array, unsigned: boolean): number {
  let h0 = 0x12a3fe2d;
  let h1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    const c = charValue(name[i]!, unsigned);
    let h = (h1 + ((h0 ^ Math.imul(c, 7152373)) >>> 0)) >>> 0;
    if (h & 0x80000000) h = (h - 0x7fffffff) >>> 0;
    h1 = h0;
    h0 = h;
  }
  return (h0 << 1) >>> 0;
}

// Scratch buffers (the hash is synchronous and not re-entrant). Int32, not Uint32: words above
// 2^31 read from a Uint32Array are doubles to the JIT, and so is all the arithmetic on them;
// every step wraps to 32 bits anyway, so the bits are the same.
const STATE = new Int32Array(4);
const WORDS8 = new Int32Array(8);
const WORDS4 = new Int32Array(4);

/**
 * Directory hash of `name` as ext4 computes it for lookups and htree ordering.
 * `version` is the dx_root_info hash version (0 legacy, 1 half_md4, 2 tea); `unsigned`
 * chooses the unsigned-char flavour (EXT2_FLAGS_UNSIGNED_HASH in s_flags).
 */
export function ext4DirHash(
  name: Uint8Array,
  version: number,
  seed: Uint32Array,
  unsigned: boolean,
): DirHash {
  const buf = STATE;
  const useSeed = seed.length >= 4 && (seed[0] || seed[1] || seed[2] || seed[3]);
  for (let i = 0; i < 4; i++) buf[i] = useSeed ? seed[i]! : DEFAULT_SEED[i]!;

  let hash: number;
  let minorHash: number;
  switch (version) {
    case HASH_LEGACY:
      hash = legacyHash(name, unsigned);
      minorHash = 0;
      break;
    case HASH_HALF_MD4: {
      const input = WORDS8;
      for (let p = 0; p < name.length; p += 32) {
        packWords(name, p, name.length - p, 8, unsigned, input);
        halfMd4Transform(buf, input);
      }
      hash = buf[1]!;
      minorHash = buf[2]!;
      break;
    }
    case HASH_TEA: {
      const input = WORDS4;
      for (let p = 0; p < name.length; p += 16) {
        packWords(name, p, name.length - p, 4, unsigned, input);
        teaTransform(buf, input);
      }
      hash = buf[0]!;
      minorHash = buf[1]!;
      break;
    }
    default:
      throw new Error(`ext4DirHash: unsupported hash version ${version} (expected 0 legacy, 1 half_md4, 2 tea)`);
  }
  hash = (hash & ~1) >>> 0;
  if (hash === (HTREE_EOF_32BIT << 1) >>> 0) hash = ((HTREE_EOF_32BIT - 1) << 1) >>> 0;
  return { hash, minorHash: minorHash >>> 0 };
}
