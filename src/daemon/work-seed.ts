// The work seed: `work-seed.ext4` beside an image's rootfs, holding the image's /root (the
// distro's dotfiles), so a VM can get a fresh writable /root from it. Read back from the
// finished rootfs with banger's own reader (the layers' bytes may already be gone: a one-layer
// pull streams them straight into the rootfs) and written with banger's own writer.
import { Ext4ImageWriter } from "../ext4/index.ts";
import { Ext4Reader } from "../ext4/read.ts";
import { displayName, type FsNode } from "../tree/index.ts";

/** /root is dotfiles; a larger one is refused rather than read into memory. */
export const WORK_SEED_MAX_BYTES = 256 << 20;

export type WorkSeedResult = { written: true; bytes: number } | { written: false; warning: string };

export async function writeWorkSeed(rootfs: string, out: string, opts: { timestamp?: number; identity?: Uint8Array } = {}): Promise<WorkSeedResult> {
  const tree = readRootHome(rootfs);
  if ("warning" in tree) return { written: false, warning: tree.warning };
  const writer = Ext4ImageWriter.open({ out, timestamp: opts.timestamp, metadataCsum: true });
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
  const r = Ext4Reader.open(rootfs);
  try {
    const rootDir = r.readDir(2).find((e) => e.name === "root");
    if (!rootDir) return { warning: "the image has no /root: no work seed was made" };
    const top = r.nodeOf(rootDir.ino);
    if (top.kind !== "dir") return { warning: `the image's /root is a ${top.kind}, not a directory: no work seed was made` };
    let bytes = 0;
    const byIno = new Map<number, FsNode>([[rootDir.ino, top]]);
    const stack: Array<[number, FsNode, string]> = [[rootDir.ino, top, "/root"]];
    while (stack.length > 0) {
      const [dirIno, dir, path] = stack.pop()!;
      for (const e of r.readDir(dirIno)) {
        if (e.name === "." || e.name === "..") continue;
        let child = byIno.get(e.ino);
        if (!child) {
          child = r.nodeOf(e.ino);
          byIno.set(e.ino, child);
          bytes += child.size;
          if (bytes > WORK_SEED_MAX_BYTES) return { warning: `the image's /root holds more than ${WORK_SEED_MAX_BYTES >> 20} MiB (at "${displayName(path + "/" + e.name)}"): no work seed was made` };
          if (child.kind === "dir") stack.push([e.ino, child, `${path}/${e.name}`]);
        }
        dir.children!.set(e.name, child);
      }
    }
    return { root: top, bytes };
  } finally {
    r.close();
  }
}
