// The kernel as the oracle: loop-mount an image (ours or a reference that GNU tar extracted
// onto a mkfs.ext4-made filesystem), snapshot every entry's metadata and content, and diff.
// Needs root (mount), util-linux (mount/umount/losetup), attr (getfattr), e2fsprogs, GNU tar.
//
// What GNU tar restores on extraction (measured with tar 1.34 on Linux 6.x, as root with
// --xattrs --xattrs-include='*' --acls --numeric-owner --same-owner -p): mode incl.
// setuid/setgid/sticky (applied after chown), uid/gid, mtime with nanoseconds (also pre-1970
// and symlinks), xattrs of every namespace incl. security.capability (set after chown, so the
// kernel does not clear it), POSIX ACLs, device numbers, hardlinks (also to symlinks and
// devices, when the archive says so), directory mtimes (set after the directory is filled).
// Nothing needed fixing up afterwards. Not compared: atime/ctime/crtime (tar cannot set
// ctime; atime changes when we read) and lost+found's contents/metadata (mkfs made it).
import { lstatSync, readdirSync, readlinkSync, openSync, readSync, closeSync, mkdirSync, rmSync, statSync, fstatSync } from "node:fs";
import { join } from "node:path";
import { toolPath } from "./env.ts";
import { dataSegments, run, runOk, scratchDir } from "./oracles.ts";

export type EntryType = "file" | "dir" | "symlink" | "chardev" | "blockdev" | "fifo" | "socket";

export interface SnapshotEntry {
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Regular files only. */
  size?: bigint;
  /** contentDigest(): sha256 over the non-zero 4 KiB blocks and their indexes. */
  sha256?: string;
  linkTarget?: string;
  rdevMajor?: number;
  rdevMinor?: number;
  /** name → hex value, every namespace (user, trusted, security, system.posix_acl_*). */
  xattrs: Record<string, string>;
  /** Path of the first entry (in sorted walk order) that has the same inode: hardlink group. */
  inodeGroup: string;
  mtimeSec: bigint;
  mtimeNsec: number;
}

/** Keys are "/" for the root and "/a/b" below it. */
export type Snapshot = Map<string, SnapshotEntry>;

function typeOf(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    case 0o020000:
      return "chardev";
    case 0o060000:
      return "blockdev";
    case 0o010000:
      return "fifo";
    case 0o140000:
      return "socket";
    default:
      throw new Error(`unknown file type in mode 0${mode.toString(8)}`);
  }
}

let readBuf: Buffer | null = null;
const ZERO_BLOCK = Buffer.alloc(4096);

/**
 * Content digest of a regular file: sha256 over (block index as u64 LE, block bytes) for every
 * 4 KiB block that is not all zero. Equal digests (with equal sizes) ⇔ equal contents, whether
 * zeros are stored as holes (our writer) or as written blocks (GNU tar on the kernel), and a
 * 4.5 GiB mostly-hole file costs only its data segments (found with SEEK_DATA).
 */
function contentDigest(path: string): string {
  const h = new Bun.CryptoHasher("sha256");
  const fd = openSync(path, "r");
  try {
    // One shared buffer: allocating per file made 65k small files take 40 s.
    const buf = (readBuf ??= Buffer.allocUnsafe(4 << 20));
    const size = fstatSync(fd).size;
    const index = Buffer.alloc(8);
    let next = 0; // first byte not yet digested
    for (const [segStart, segEnd] of dataSegments(fd, size)) {
      let pos = Math.max(next, Math.floor(segStart / 4096) * 4096);
      while (pos < segEnd) {
        const want = Math.min(buf.length, Math.ceil((segEnd - pos) / 4096) * 4096, size - pos);
        const n = readSync(fd, buf, 0, want, pos);
        if (n <= 0) break;
        for (let off = 0; off < n; off += 4096) {
          const blk = buf.subarray(off, Math.min(off + 4096, n));
          if (blk.equals(ZERO_BLOCK.subarray(0, blk.length))) continue;
          index.writeBigUInt64LE(BigInt((pos + off) / 4096));
          h.update(index);
          h.update(blk);
        }
        pos += n;
      }
      next = pos;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Undoes getfattr's quoting of file names: \ooo octal escapes (incl. \134 for backslash). */
function unquoteGetfattr(raw: Buffer): string {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString("latin1"))) {
      out.push(parseInt(raw.subarray(i + 1, i + 4).toString("latin1"), 8));
      i += 3;
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out).toString("utf8");
}

/** All xattrs under root, from ONE recursive getfattr run: absolute path → name → hex. */
function readAllXattrs(root: string): Map<string, Record<string, string>> {
  const p = Bun.spawnSync(
    [toolPath("getfattr"), "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (p.exitCode !== 0) throw new Error(`getfattr -R ${root} exited ${p.exitCode}: ${p.stderr.toString()}`);
  const out = p.stdout;
  const result = new Map<string, Record<string, string>>();
  let current: Record<string, string> | null = null;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (line.length === 0) {
      current = null;
      continue;
    }
    const text = line.toString("latin1");
    if (text.startsWith("# file: ")) {
      current = {};
      result.set(unquoteGetfattr(line.subarray(8)), current);
      continue;
    }
    const eq = text.indexOf("=");
    if (current === null || eq < 0) throw new Error(`getfattr output: unexpected line ${JSON.stringify(text)}`);
    const value = text.slice(eq + 1);
    current[unquoteGetfattr(line.subarray(0, eq))] = value.startsWith("0x") ? value.slice(2) : value;
  }
  return result;
}

/**
 * Every entry under mountDir: type, mode, owner, link count, size and sha256 of files, link
 * targets, device numbers, all xattrs, hardlink groups and mtime with nanoseconds. Entries
 * are walked in sorted order so hardlink groups are named the same way for equal trees.
 */
export function snapshotTree(mountDir: string): Snapshot {
  const root = mountDir.replace(/\/+$/, "");
  const xattrs = readAllXattrs(root);
  const snap: Snapshot = new Map();
  const firstPathOfInode = new Map<bigint, string>();
  const visit = (abs: string, rel: string): void => {
    const st = lstatSync(abs, { bigint: true });
    const mode = Number(st.mode);
    const type = typeOf(mode);
    const key = rel === "" ? "/" : rel;
    let group = firstPathOfInode.get(st.ino);
    if (group === undefined) {
      group = key;
      firstPathOfInode.set(st.ino, key);
    }
    const sec = st.mtimeNs >= 0n ? st.mtimeNs / 1_000_000_000n : -((-st.mtimeNs + 999_999_999n) / 1_000_000_000n);
    const entry: SnapshotEntry = {
      type,
      mode: mode & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      nlink: Number(st.nlink),
      xattrs: xattrs.get(abs) ?? {},
      inodeGroup: group,
      mtimeSec: sec,
      mtimeNsec: Number(st.mtimeNs - sec * 1_000_000_000n),
    };
    if (type === "file") {
      entry.size = st.size;
      entry.sha256 = contentDigest(abs);
    } else if (type === "symlink") {
      entry.linkTarget = readlinkSync(abs, "utf8");
    } else if (type === "chardev" || type === "blockdev") {
      const rdev = st.rdev;
      entry.rdevMajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      entry.rdevMinor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    }
    snap.set(key, entry);
    if (type === "dir") {
      const names = readdirSync(abs).sort();
      for (const name of names) visit(join(abs, name), `${rel}/${name}`);
    }
  };
  visit(root, "");
  return snap;
}

function fmtEntryField(k: string, v: unknown): string {
  if (k === "mode" && typeof v === "number") return `0${v.toString(8)}`;
  if (typeof v === "bigint") return v.toString();
  return JSON.stringify(v);
}

/**
 * Human-readable differences between two snapshots ("a" is usually ours, "b" the
 * reference). `ignore` holds paths (without the leading "/") whose subtree is skipped.
 * `ignoreFields` drops fields from the comparison (e.g. "mtime" on purpose).
 */
export function compareSnapshots(
  a: Snapshot,
  b: Snapshot,
  opts: { ignore?: string[]; ignoreFields?: string[]; labels?: [string, string]; max?: number } = {},
): string[] {
  const [la, lb] = opts.labels ?? ["ours", "reference"];
  const ignored = (p: string) =>
    (opts.ignore ?? []).some((ig) => {
      const i = "/" + ig.replace(/^\/+|\/+$/g, "");
      return p === i || p.startsWith(i + "/");
    });
  const skipField = new Set(opts.ignoreFields ?? []);
  const diffs: string[] = [];
  const paths = new Set([...a.keys(), ...b.keys()]);
  for (const p of [...paths].sort()) {
    if (ignored(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (!x) {
      diffs.push(`${p}: only in ${lb} (${y!.type})`);
      continue;
    }
    if (!y) {
      diffs.push(`${p}: only in ${la} (${x.type})`);
      continue;
    }
    const fields = ["type", "mode", "uid", "gid", "nlink", "size", "sha256", "linkTarget", "rdevMajor", "rdevMinor", "inodeGroup"] as const;
    for (const f of fields) {
      if (skipField.has(f)) continue;
      // The root's and directories' link counts include lost+found and subdirs on both sides.
      if (x[f] !== y[f]) diffs.push(`${p}: ${f} ${la}=${fmtEntryField(f, x[f])} ${lb}=${fmtEntryField(f, y[f])}`);
    }
    if (!skipField.has("mtime") && (x.mtimeSec !== y.mtimeSec || x.mtimeNsec !== y.mtimeNsec)) {
      diffs.push(`${p}: mtime ${la}=${x.mtimeSec}.${String(x.mtimeNsec).padStart(9, "0")} ${lb}=${y.mtimeSec}.${String(y.mtimeNsec).padStart(9, "0")}`);
    }
    if (!skipField.has("xattrs")) {
      const names = new Set([...Object.keys(x.xattrs), ...Object.keys(y.xattrs)]);
      for (const n of [...names].sort()) {
        const xv = x.xattrs[n];
        const yv = y.xattrs[n];
        if (xv === yv) continue;
        if (xv === undefined) diffs.push(`${p}: xattr ${n} only in ${lb} (0x${yv})`);
        else if (yv === undefined) diffs.push(`${p}: xattr ${n} only in ${la} (0x${xv})`);
        else diffs.push(`${p}: xattr ${n} ${la}=0x${xv} ${lb}=0x${yv}`);
      }
    }
    if (opts.max !== undefined && diffs.length >= opts.max) {
      diffs.push(`... stopped after ${opts.max} differences`);
      break;
    }
  }
  return diffs;
}

/** Loop devices currently backing `image` (losetup -j), as "/dev/loopN" names. */
export function loopsFor(image: string): string[] {
  const r = runOk([toolPath("losetup"), "-j", image]);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(":")));
}

/**
 * Loop-mounts image (read-only unless readWrite), runs fn on the mount dir, and always
 * unmounts and makes sure no loop device stays attached to the image.
 */
export async function mountImage<T>(
  image: string,
  fn: (mountDir: string) => T | Promise<T>,
  opts: { readWrite?: boolean } = {},
): Promise<T> {
  const dir = scratchDir("mnt");
  const mnt = join(dir, "m");
  mkdirSync(mnt);
  let mounted = false;
  try {
    const r = run([toolPath("mount"), "-t", "ext4", "-o", opts.readWrite ? "loop" : "ro,loop", image, mnt]);
    if (r.exitCode !== 0) {
      const dmesg = run(["dmesg"]).stdout.split("\n").filter((l) => /EXT4|loop/i.test(l)).slice(-10).join("\n");
      throw new Error(`mount ${opts.readWrite ? "rw" : "ro"} of ${image} failed (exit ${r.exitCode}): ${r.stderr}${r.stdout}\nkernel log:\n${dmesg}`);
    }
    mounted = true;
    return await fn(mnt);
  } finally {
    if (mounted) {
      const u = run([toolPath("umount"), mnt]);
      if (u.exitCode !== 0) {
        // Something still holds it (a test's open file); detach lazily rather than leak.
        run([toolPath("umount"), "-l", mnt]);
      }
    }
    for (const loop of loopsFor(image)) run([toolPath("losetup"), "-d", loop]);
    rmSync(dir, { recursive: true, force: true });
    const left = loopsFor(image);
    if (left.length) throw new Error(`loop device(s) ${left.join(", ")} still attached to ${image}`);
  }
}

/** Where a tar comes from: a file, or the stdout of a command (for multi-GiB streams). */
export type TarSource = string | { command: string[]; approxBytes: number };

/** Spawns `tar -x...` on src; returns its exit code and stderr. */
export async function extractWithGnuTar(src: TarSource, dest: string): Promise<void> {
  const tarArgs = [
    toolPath("tar"),
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
    "--numeric-owner",
    "--same-owner",
    "-p",
    "-x",
    "-f",
    typeof src === "string" ? src : "-",
    "-C",
    dest,
  ];
  if (typeof src === "string") {
    const r = run(tarArgs);
    if (r.exitCode !== 0) throw new Error(`GNU tar extraction of ${src} failed (exit ${r.exitCode}): ${r.stderr}`);
    return;
  }
  const producer = Bun.spawn(src.command, { stdout: "pipe", stderr: "pipe" });
  const tar = Bun.spawn(tarArgs, { stdin: producer.stdout, stdout: "pipe", stderr: "pipe" });
  const [pc, tc] = await Promise.all([producer.exited, tar.exited]);
  if (pc !== 0 || tc !== 0) {
    throw new Error(
      `${src.command.join(" ")} | tar -x: exit ${pc}/${tc}: ${await new Response(producer.stderr).text()} ${await new Response(tar.stderr).text()}`,
    );
  }
}

/**
 * What the kernel + GNU tar make of a tar: mkfs.ext4 an empty image big enough for it,
 * loop-mount it, extract as root with all metadata, snapshot, unmount, delete.
 */
export async function kernelReference(src: TarSource, opts: { inodes?: number } = {}): Promise<Snapshot> {
  const tarBytes = typeof src === "string" ? statSync(src).size : src.approxBytes;
  // Extraction writes every byte (no holes), plus metadata; inodes: at most one per 512 bytes of tar.
  const sizeBytes = Math.ceil((tarBytes * 1.3 + 256 * 2 ** 20) / 2 ** 20) * 2 ** 20;
  const inodes = opts.inodes ?? Math.min(Math.ceil(tarBytes / 512) + 4096, 4_000_000);
  const dir = scratchDir("kref");
  const image = join(dir, "ref.img");
  try {
    runOk(["truncate", "-s", String(sizeBytes), image]);
    runOk([toolPath("mkfs.ext4"), "-q", "-F", "-b", "4096", "-I", "256", "-N", String(inodes), "-E", "lazy_itable_init=1,lazy_journal_init=1", image]);
    return await mountImage(
      image,
      async (mnt) => {
        await extractWithGnuTar(src, mnt);
        return snapshotTree(mnt);
      },
      { readWrite: true },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
