// The work seed: `work-seed.ext4` beside an image's rootfs, holding the image's /root (the
// distro's dotfiles), so a VM can get a fresh writable /root from it. Read back from the
// finished rootfs with banger's own reader (the layers' bytes may already be gone: a one-layer
// pull streams them straight into the rootfs) and written with banger's own writer.
import { Ext4ImageWriter } from "../ext4/index.ts";
import type { IoOptions } from "../io/options.ts";
import { openExt4Image } from "../ext4/read/index.ts";
import { walkTree, type FsNode } from "../tree/index.ts";

/** ext4's root directory inode. */
const ROOT_DIR_INO = 2;

/** /root is dotfiles; a larger one is refused rather than read into memory. */
export const WORK_SEED_MAX_BYTES = 256 << 20;

export type WorkSeedResult = { written: true; bytes: number } | { written: false; warning: string };

export async function writeWorkSeed(rootfs: string, out: string, opts: { timestamp?: number; identity?: Uint8Array; io?: IoOptions } = {}): Promise<WorkSeedResult> {
  const tree = readRootHome(rootfs);
  if ("warning" in tree) return { written: false, warning: tree.warning };
  const writer = Ext4ImageWriter.open({ out, timestamp: opts.timestamp, metadataCsum: true, io: opts.io });
  try {
    await writer.finish(tree.root, [], opts.identity);
  } catch (err) {
    await writer.discard();
    throw err;
  }
  return { written: true, bytes: tree.bytes };
}

/** /root of the image as a tree with its files' bytes in memory, or why there is none. */
function readRootHome(rootfs: string): { root: FsNode; bytes: number } | { warning: string } {
  const img = openExt4Image(rootfs);
  try {
    const entry = img.readdir(ROOT_DIR_INO).find((e) => e.name === "root");
    if (!entry) return { warning: "the image has no /root: no work seed was made" };
    const kind = img.stat(entry.ino).kind;
    if (kind !== "dir") return { warning: `the image's /root is a ${kind ?? "file of unknown type"}, not a directory: no work seed was made` };
    let root: FsNode;
    try {
      root = img.readTree({ at: entry.ino, maxBytes: WORK_SEED_MAX_BYTES });
    } catch (err) {
      if (err instanceof Error && err.message.includes("more than")) return { warning: `the image's /root holds more than ${WORK_SEED_MAX_BYTES >> 20} MiB: no work seed was made` };
      throw err;
    }
    let bytes = 0;
    walkTree(root, (n) => (bytes += n.size));
    return { root, bytes };
  } finally {
    img.close();
  }
}
