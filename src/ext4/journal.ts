// The internal journal (inode 8): a JBD2 superblock, version 2, in its first block, big-endian,
// describing an empty, clean log (s_start = 0). The rest of the journal is zeros.
import { BLOCK_SIZE, JBD2_MAGIC } from "./constants.ts";

const JBD2_SUPERBLOCK_V2 = 4;

export function encodeJournalSuperblock(journalBlocks: number, fsUuid: Uint8Array): Uint8Array {
  const buf = new Uint8Array(BLOCK_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0x00, JBD2_MAGIC); // h_magic
  v.setUint32(0x04, JBD2_SUPERBLOCK_V2); // h_blocktype
  v.setUint32(0x08, 0); // h_sequence
  v.setUint32(0x0c, BLOCK_SIZE); // s_blocksize
  v.setUint32(0x10, journalBlocks); // s_maxlen
  v.setUint32(0x14, 1); // s_first: first log block
  v.setUint32(0x18, 1); // s_sequence: first expected commit id
  v.setUint32(0x1c, 0); // s_start: 0 = clean, nothing to replay
  buf.set(fsUuid, 0x30); // s_uuid
  v.setUint32(0x40, 1); // s_nr_users: the filesystem itself
  return buf;
}
