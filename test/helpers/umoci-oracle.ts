// umoci as the reference layer flattener: `umoci unpack` of an OCI layout (as root, so owners,
// devices and security.capability are real), snapshotted with kernel-compare's snapshotTree,
// and compared entry by entry (type, mode, owner, size, content, link target, rdev, xattrs,
// hardlink groups, mtime) with a pulled rootfs.ext4 that is loop-mounted read-only.
//
// What umoci 0.4.7 does (measured on the pull fixture, see test/e2e/pull-oracle.test.ts):
// whiteouts delete lower entries only (a same-layer entry before or after the whiteout stays);
// opaque markers hide lower children wherever they sit in the layer; type changes replace;
// dir over dir keeps children and takes the new metadata (mode, owner, xattrs, mtime); hardlinks
// to lower and same-layer files share an inode; members under a symlinked parent land where
// the symlink points, resolved inside the root; the `./` entry's mode, owner and xattrs go on
// the root; mtimes keep their nanoseconds, and a directory's mtime is put back after each
// member written into it (also after whiteouts), so it ends as its own entry said.
//
// The differences that are allowed, and only these:
// - Directory link counts (nlink) are not compared. They follow from the tree (which is compared
//   entry by entry), and depend on the filesystem under the reference (btrfs says 1) and on
//   ext4's lost+found in the root of ours.
// - /lost+found exists only in ours (mkfs-style ext4 has it); it must be a 0700 root:root dir.
// - The mtime of implied parents (directories no layer names) and of the directory the topmost
//   of them was created in: umoci makes them with MkdirAll at unpack time (mtime = now) and does
//   not put the holding directory's mtime back, so neither has a value from the image.
//   Their type, mode and owner are still compared. umoci is run with umask 022 so that
//   implied parents get 0755 (MkdirAll's 0777 minus the umask) as the OCI notes prescribe.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { compareSnapshots, mountImage, snapshotTree, type Snapshot, type SnapshotEntry } from "./kernel-compare.ts";
import { runOk, scratchDir } from "./oracles.ts";
import { writeUmociLayout } from "./pull-fixtures.ts";

/** `umoci unpack --image LAYOUT:TAG BUNDLE` (as root, umask 022); returns BUNDLE/rootfs. */
export function umociUnpack(layoutDir: string, tag: string, bundleDir: string): string {
  runOk(["sh", "-c", 'umask 022 && exec umoci unpack --image "$1" "$2"', "sh", `${layoutDir}:${tag}`, bundleDir]);
  return join(bundleDir, "rootfs");
}

/** Unpacks with umoci into a scratch dir, snapshots the rootfs, removes everything. */
export function umociSnapshotOf(layoutDir: string, tag: string): Snapshot {
  const dir = scratchDir("umoci");
  try {
    return snapshotTree(umociUnpack(layoutDir, tag, join(dir, "bundle")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let fixtureSnapshot: Snapshot | undefined;

/** umoci's tree of the pull fixture's amd64 image (computed once per process). */
export function umociFixtureSnapshot(): Snapshot {
  if (fixtureSnapshot) return fixtureSnapshot;
  const dir = scratchDir("umoci-layout");
  try {
    const layout = join(dir, "layout");
    mkdirSync(layout);
    writeUmociLayout(layout, "amd64");
    fixtureSnapshot = umociSnapshotOf(layout, "amd64");
    return fixtureSnapshot;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Directories the pull fixture's layers never name (created as implied parents). */
export const FIXTURE_IMPLIED_DIRS = ["/deep", "/deep/implied", "/deep/implied/dir"];

/** The directory where the topmost implied parent was created (its mtime umoci leaves at "now"). */
function holderOf(impliedDirs: string[]): string[] {
  const set = new Set(impliedDirs);
  const out = new Set<string>();
  for (const d of impliedDirs) {
    const parent = d.slice(0, d.lastIndexOf("/")) || "/";
    if (!set.has(parent)) out.add(parent);
  }
  return [...out];
}

/** A copy with the allowed differences neutralized (see the header comment). */
export function normalizeForUmoci(snap: Snapshot, impliedDirs: string[]): Snapshot {
  const noMtime = new Set([...impliedDirs, ...holderOf(impliedDirs)]);
  const out: Snapshot = new Map();
  for (const [p, e] of snap) {
    const c: SnapshotEntry = { ...e, xattrs: { ...e.xattrs } };
    if (c.type === "dir") c.nlink = 0;
    if (noMtime.has(p)) {
      c.mtimeSec = 0n;
      c.mtimeNsec = 0;
    }
    out.set(p, c);
  }
  return out;
}

/**
 * Differences between a mounted image's tree and umoci's (both snapshots), after the allowed
 * ones. `ignore`: extra subtrees to skip (none expected today). Checks lost+found first.
 */
export function diffAgainstUmoci(ours: Snapshot, reference: Snapshot, opts: { impliedDirs?: string[]; ignore?: string[] } = {}): string[] {
  const diffs: string[] = [];
  const lf = ours.get("/lost+found");
  if (!lf) diffs.push("/lost+found: missing from ours");
  else if (lf.type !== "dir" || lf.mode !== 0o700 || lf.uid !== 0 || lf.gid !== 0) diffs.push(`/lost+found: ${lf.type} 0${lf.mode.toString(8)} ${lf.uid}:${lf.gid}, want dir 0700 0:0`);
  const implied = opts.impliedDirs ?? FIXTURE_IMPLIED_DIRS;
  diffs.push(
    ...compareSnapshots(normalizeForUmoci(ours, implied), normalizeForUmoci(reference, implied), {
      ignore: ["lost+found", ...(opts.ignore ?? [])],
      labels: ["pulled", "umoci"],
      max: 200,
    }),
  );
  return diffs;
}

/** Loop-mounts rootfs.ext4 read-only, snapshots it and diffs it against umoci's tree. */
export async function compareImageWithUmoci(rootfsExt4: string, reference: Snapshot, opts: { impliedDirs?: string[]; ignore?: string[] } = {}): Promise<string[]> {
  const ours = await mountImage(rootfsExt4, (mnt) => snapshotTree(mnt));
  return diffAgainstUmoci(ours, reference, opts);
}

/**
 * What to leave out of a comparison with umoci for banger's guest files (umoci has none): each
 * injected path, and the topmost of its parents that the reference lacks (implied by banger).
 */
export function guestOnlyPaths(injected: string[], reference: Snapshot): string[] {
  const out = new Set<string>();
  for (const p of injected) {
    let top = p;
    for (let d = p.slice(0, p.lastIndexOf("/")); d !== ""; d = d.slice(0, d.lastIndexOf("/"))) {
      if (!reference.has(d)) top = d;
    }
    out.add(top);
  }
  return [...out].sort();
}
