// Directory hashes as the reader sees them: the on-disk hash version numbers 0-2 (signedness
// from the superblock flags) and 3-5 (the "unsigned" variants e2fsprogs uses internally).
// The hash itself is src/ext4/dirhash.ts, checked against debugfs dx_hash in its own tests.
import { ext4DirHash } from "../dirhash.ts";

export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;

/** { hash (low bit clear), minor } of a name for `version` (0..5) and the s_hash_seed words. */
export function dirHash(name: Uint8Array, version: number, seed: Uint32Array): { hash: number; minor: number } {
  if (version < 0 || version > 5) throw new Error(`unknown directory hash version ${version}`);
  const r = ext4DirHash(name, version % 3, seed, version >= 3);
  return { hash: r.hash, minor: r.minorHash };
}
