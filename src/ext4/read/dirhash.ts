// Directory-index name hashes (Documentation/filesystems/ext4/directory.rst, "Hash Tree
// Directories"): legacy, half-MD4 and TEA, each with the signed-char and unsigned-char
// variants (the superblock's s_flags say which one the filesystem was created with).

export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;
/** The reserved end-of-directory hash (0x7fffffff << 1) is never produced. */
const HTREE_EOF_32 = 0x7fffffff;

const rol = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;

/** Byte i of the name as the kernel's (signed or unsigned) char, widened to int. */
function charAt(name: Uint8Array, i: number, signed: boolean): number {
  const c = name[i]!;
  return signed && c > 127 ? c - 256 : c;
}

/**
 * Packs up to 4*num name bytes big-endian-ish into num words, each word started from a pad
 * made of the remaining length; missing words are the pad itself.
 */
function packWords(name: Uint8Array, start: number, num: number, signed: boolean): Uint32Array {
  const remaining = name.length - start;
  let pad = (remaining | (remaining << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  const words = new Uint32Array(num);
  const take = Math.min(remaining, num * 4);
  let w = 0;
  let val = pad;
  for (let i = 0; i < take; i++) {
    if (i % 4 === 0) val = pad;
    val = (charAt(name, start + i, signed) + Math.imul(val, 256)) >>> 0;
    if (i % 4 === 3) {
      words[w++] = val;
      val = pad;
    }
  }
  if (w < num) words[w++] = val;
  while (w < num) words[w++] = pad;
  return words;
}

const K2 = 0x5a827999;
const K3 = 0x6ed9eba1;
// Per round: [word index, shift] for the 8 steps; the state rotates a, d, c, b.
const ROUND1: Array<[number, number]> = [[0, 3], [1, 7], [2, 11], [3, 19], [4, 3], [5, 7], [6, 11], [7, 19]];
const ROUND2: Array<[number, number]> = [[1, 3], [3, 5], [5, 9], [7, 13], [0, 3], [2, 5], [4, 9], [6, 13]];
const ROUND3: Array<[number, number]> = [[3, 3], [7, 9], [2, 11], [6, 15], [1, 3], [5, 9], [0, 11], [4, 15]];

function halfMd4(buf: Uint32Array, x: Uint32Array): void {
  // s[0..3] = a, b, c, d. Step k updates s[target] where target cycles a, d, c, b.
  const s = [buf[0]!, buf[1]!, buf[2]!, buf[3]!];
  const order = [0, 3, 2, 1];
  const f = (b: number, c: number, d: number): number => (d ^ (b & (c ^ d))) >>> 0;
  const g = (b: number, c: number, d: number): number => ((b & c) + ((b ^ c) & d)) >>> 0;
  const h = (b: number, c: number, d: number): number => (b ^ c ^ d) >>> 0;
  const round = (fn: (b: number, c: number, d: number) => number, k: number, steps: Array<[number, number]>): void => {
    steps.forEach(([word, shift], step) => {
      const t = order[step % 4]!;
      // Arguments are the three other state words in cyclic order after the target.
      const b = s[(t + 1) % 4]!;
      const c = s[(t + 2) % 4]!;
      const d = s[(t + 3) % 4]!;
      s[t] = rol((s[t]! + fn(b, c, d) + x[word]! + k) >>> 0, shift);
    });
  };
  round(f, 0, ROUND1);
  round(g, K2, ROUND2);
  round(h, K3, ROUND3);
  for (let i = 0; i < 4; i++) buf[i] = (buf[i]! + s[i]!) >>> 0;
}

function tea(buf: Uint32Array, x: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0]!;
  let b1 = buf[1]!;
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + x[0]!) ^ (b1 + sum) ^ ((b1 >>> 5) + x[1]!)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + x[2]!) ^ (b0 + sum) ^ ((b0 >>> 5) + x[3]!)) >>> 0)) >>> 0;
  }
  buf[0] = (buf[0]! + b0) >>> 0;
  buf[1] = (buf[1]! + b1) >>> 0;
}

function legacy(name: Uint8Array, signed: boolean): number {
  let h0 = 0x12a3fe2d;
  let h1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    let h = (h1 + ((h0 ^ Math.imul(charAt(name, i, signed), 7152373)) >>> 0)) >>> 0;
    if (h & 0x80000000) h = (h - 0x7fffffff) >>> 0;
    h1 = h0;
    h0 = h;
  }
  return (h0 << 1) >>> 0;
}

/** { hash (low bit clear), minor } of a name for `version` (0..5) and the s_hash_seed words. */
export function dirHash(name: Uint8Array, version: number, seed: Uint32Array): { hash: number; minor: number } {
  const buf = Uint32Array.of(0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476);
  if (seed.some((w) => w !== 0)) buf.set(seed);
  const signed = version < 3;
  let hash: number;
  let minor = 0;
  switch (version) {
    case DX_HASH_LEGACY:
    case DX_HASH_LEGACY_UNSIGNED:
      hash = legacy(name, signed);
      break;
    case DX_HASH_HALF_MD4:
    case DX_HASH_HALF_MD4_UNSIGNED:
      for (let p = 0; p < name.length; p += 32) halfMd4(buf, packWords(name, p, 8, signed));
      hash = buf[1]!;
      minor = buf[2]!;
      break;
    case DX_HASH_TEA:
    case DX_HASH_TEA_UNSIGNED:
      for (let p = 0; p < name.length; p += 16) tea(buf, packWords(name, p, 4, signed));
      hash = buf[0]!;
      minor = buf[1]!;
      break;
    default:
      throw new Error(`unknown directory hash version ${version}`);
  }
  hash = (hash & ~1) >>> 0;
  if (hash === (HTREE_EOF_32 << 1) >>> 0) hash = ((HTREE_EOF_32 - 1) << 1) >>> 0;
  return { hash, minor };
}
