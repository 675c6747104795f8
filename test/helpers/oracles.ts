// e2fsprogs as test oracles: e2fsck (check + preen-changes-nothing), debugfs (stat, ea_list,
// htree_dump) and dumpe2fs (superblock header). Real tools from /usr/sbin, never mocks.
// Every failure message carries the tool's full output so a red test explains itself.
import { mkdtempSync, rmSync, openSync, readSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { toolPath } from "./env.ts";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing output (no shell). */
export function run(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): RunResult {
  const p = Bun.spawnSync(argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdout: "pipe", stderr: "pipe" });
  return { exitCode: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** Like run, but throws with the command and its whole output on a non-zero exit. */
export function runOk(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): RunResult {
  const r = run(argv, opts);
  if (r.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} exited ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r;
}

/**
 * Superblock fields (offset in the primary superblock, length) that every forced e2fsck run
 * rewrites even on a perfect filesystem: s_wtime, s_mnt_count, s_lastcheck, s_kbytes_written,
 * their _hi bytes, and s_checksum. Measured: `e2fsck -fp` on a fresh mkfs.ext4 image changes
 * s_kbytes_written and s_checksum and nothing else.
 */
const VOLATILE_SUPERBLOCK_FIELDS: [number, number][] = [
  [0x30, 4], [0x34, 2], [0x40, 4], [0x178, 8], [0x274, 1], [0x277, 1], [0x3fc, 4],
];

/** sha256 of a whole file, streamed in 4 MiB chunks; optionally with the volatile superblock fields zeroed. */
export function sha256File(path: string, opts: { maskVolatileSuperblock?: boolean } = {}): string {
  const h = new Bun.CryptoHasher("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    let first = true;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      if (first && opts.maskVolatileSuperblock && n >= 2048) {
        for (const [off, len] of VOLATILE_SUPERBLOCK_FIELDS) buf.fill(0, 1024 + off, 1024 + off + len);
      }
      first = false;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/**
 * The image passes `e2fsck -fn` (exit 0), and `e2fsck -fp` on a sparse copy exits 0 and
 * leaves the copy byte-identical apart from the superblock bookkeeping any forced check
 * rewrites (VOLATILE_SUPERBLOCK_FIELDS): a preen pass that silently "optimizes directories"
 * or fixes counts means we wrote something e2fsprogs would not have. Throws with the full
 * outputs and the first differing byte offsets otherwise.
 */
export function e2fsckClean(image: string): void {
  const e2fsck = toolPath("e2fsck");
  const check = run([e2fsck, "-fn", image]);
  if (check.exitCode !== 0) {
    throw new Error(`e2fsck -fn ${image} exited ${check.exitCode}\n${check.stdout}${check.stderr}`);
  }
  const dir = mkdtempSync(join(dirname(image), ".e2fsck-preen-"));
  const copy = join(dir, "copy.img");
  try {
    runOk(["cp", "--sparse=always", image, copy]);
    const before = sha256File(image, { maskVolatileSuperblock: true });
    const preen = run([e2fsck, "-fp", copy]);
    if (preen.exitCode !== 0) {
      throw new Error(`e2fsck -fp (copy of ${image}) exited ${preen.exitCode}\n${preen.stdout}${preen.stderr}`);
    }
    const after = sha256File(copy, { maskVolatileSuperblock: true });
    if (before !== after) {
      const cmp = run(["sh", "-c", 'cmp -l "$1" "$2" | head -20', "sh", image, copy]).stdout.split("\n").slice(0, 20).join("\n");
      throw new Error(
        `e2fsck -fp changed a copy of ${image} although it exited 0 (sha256 ${before} -> ${after})\n` +
          `first changed bytes (1-based offset, old, new, octal):\n${cmp}\n--- e2fsck -fp said\n` +
          `${preen.stdout}${preen.stderr}\n--- e2fsck -fn said\n${check.stdout}${check.stderr}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function debugfs(image: string, request: string): string {
  // debugfs exits 0 even when the request fails; errors appear on stderr after the banner.
  const r = run([toolPath("debugfs"), "-R", request, image]);
  const err = r.stderr
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l))
    .join("\n");
  if (r.exitCode !== 0 || err !== "") {
    throw new Error(`debugfs -R '${request}' ${image} failed (exit ${r.exitCode}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

export interface DebugfsTime {
  /** Seconds since the epoch, decoded by debugfs from i_*time and the epoch bits. */
  raw: string;
  /** The human string debugfs prints, e.g. "Fri Jan  1 12:00:00 1960". */
  text: string;
}

export interface DebugfsStat {
  inode: number;
  type: string;
  mode: number;
  flags: number;
  uid: number;
  gid: number;
  size: bigint;
  links: number;
  blockcount: bigint;
  fileAcl: number;
  times: Partial<Record<"ctime" | "atime" | "mtime" | "crtime", DebugfsTime>>;
  xattrs: Map<string, Buffer>;
  fastLinkDest?: string;
  device?: { major: number; minor: number; style: "old" | "new" };
  /** The EXTENTS section verbatim (empty when absent). */
  extents: string;
  raw: string;
}

function num(raw: string, re: RegExp, what: string): string {
  const m = re.exec(raw);
  if (!m) throw new Error(`debugfs stat: no ${what} in\n${raw}`);
  return m[1]!;
}

/** debugfs `stat PATH`, parsed. */
export function debugfsStat(image: string, path: string): DebugfsStat {
  const raw = debugfs(image, `stat "${path}"`);
  const times: DebugfsStat["times"] = {};
  for (const m of raw.matchAll(/^\s*(ctime|atime|mtime|crtime): (0x[0-9a-f]+(?::[0-9a-f]+)?) -- (.*)$/gm)) {
    times[m[1] as "ctime"] = { raw: m[2]!, text: m[3]!.trim() };
  }
  const dev = /\((New|Old)-style\) Device major\/minor number: (\d+):(\d+)/.exec(raw);
  const fast = /^Fast link dest: "(.*)"$/m.exec(raw);
  const ext = /^EXTENTS:\n([\s\S]*)$/m.exec(raw);
  return {
    inode: Number(num(raw, /Inode: (\d+)/, "inode")),
    type: num(raw, /Type: (.+?)\s+Mode:/, "type"),
    mode: parseInt(num(raw, /Mode:\s+(\d+)/, "mode"), 8),
    flags: parseInt(num(raw, /Flags: (0x[0-9a-f]+)/, "flags"), 16),
    uid: Number(num(raw, /User:\s+(\d+)/, "user")),
    gid: Number(num(raw, /Group:\s+(\d+)/, "group")),
    size: BigInt(num(raw, /Size: (\d+)/, "size")),
    links: Number(num(raw, /Links: (\d+)/, "links")),
    blockcount: BigInt(num(raw, /Blockcount: (\d+)/, "blockcount")),
    fileAcl: Number(num(raw, /File ACL: (\d+)/, "file acl")),
    times,
    xattrs: parseEaLines(raw),
    fastLinkDest: fast ? fast[1] : undefined,
    device: dev ? { style: dev[1] === "New" ? "new" : "old", major: Number(dev[2]), minor: Number(dev[3]) } : undefined,
    extents: ext ? ext[1]!.trim() : "",
    raw,
  };
}

/** Decodes debugfs's quoted-string rendering of an xattr value (C-like escapes). */
function unquoteDebugfs(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      out.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const n = s[i + 1]!;
    const oct = /^[0-7]{3}/.exec(s.slice(i + 1));
    if (oct) {
      out.push(parseInt(oct[0], 8));
      i += 3;
    } else {
      out.push({ n: 10, t: 9, r: 13, "\\": 92, '"': 34 }[n] ?? n.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(out);
}

function parseEaLines(raw: string): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  const sect = raw.indexOf("Extended attributes:");
  if (sect < 0) return xattrs;
  // debugfs prints either hex bytes or a quoted string; values may run without a final newline.
  const re = /^ {2}(\S+) \((\d+)\)(?: = (?:"((?:[^"\\]|\\.)*)"|((?:[0-9a-f]{2} )*[0-9a-f]{2}) ?))?/gm;
  for (const m of raw.slice(sect).matchAll(re)) {
    const len = Number(m[2]);
    let value: Buffer;
    if (m[3] !== undefined) value = unquoteDebugfs(m[3]);
    else if (m[4] !== undefined) value = Buffer.from(m[4].replaceAll(" ", ""), "hex");
    else value = Buffer.alloc(0);
    if (value.length !== len) {
      throw new Error(`debugfs xattr ${m[1]}: printed ${value.length} bytes but says (${len})\n${raw}`);
    }
    xattrs.set(m[1]!, value);
  }
  return xattrs;
}

/** debugfs `ea_list PATH`: name → value bytes. */
export function debugfsEaList(image: string, path: string): Map<string, Buffer> {
  return parseEaLines(debugfs(image, `ea_list "${path}"`));
}

export interface HtreeEntry {
  inode: number;
  hash: number;
  minorHash: number;
  name: string;
}

export interface DebugfsHtree {
  hashVersion: number;
  indirectLevels: number;
  rootCount: number;
  rootLimit: number;
  /** Leaf blocks read by htree_dump. */
  leafBlocks: number;
  /** Entries of all leaf blocks (including "." and ".." if they sit in a leaf). */
  entries: HtreeEntry[];
  raw: string;
}

/** debugfs `htree_dump PATH`; throws if the directory is not hash-indexed. */
export function debugfsHtree(image: string, path: string): DebugfsHtree {
  const raw = debugfs(image, `htree_dump "${path}"`);
  const field = (re: RegExp, what: string) => Number(num(raw, re, what));
  const entries: HtreeEntry[] = [];
  for (const m of raw.matchAll(/(\d+) 0x([0-9a-f]{8})-([0-9a-f]{8}) \((\d+)\) (\S+)/g)) {
    entries.push({ inode: Number(m[1]), hash: parseInt(m[2]!, 16), minorHash: parseInt(m[3]!, 16), name: m[5]! });
  }
  return {
    hashVersion: field(/Hash Version: (\d+)/, "hash version"),
    indirectLevels: field(/Indirect levels: (\d+)/, "indirect levels"),
    rootCount: field(/Number of entries \(count\): (\d+)/, "count"),
    rootLimit: field(/Number of entries \(limit\): (\d+)/, "limit"),
    leafBlocks: [...raw.matchAll(/^Reading directory block/gm)].length,
    entries,
    raw,
  };
}

/** dumpe2fs -h: "Field name" → value text, plus the raw output. */
export function dumpe2fs(image: string): { fields: Map<string, string>; features: Set<string>; raw: string } {
  const r = runOk([toolPath("dumpe2fs"), "-h", image]);
  const fields = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const m = /^([A-Za-z][^:]*):\s*(.*)$/.exec(line);
    if (m && !fields.has(m[1]!)) fields.set(m[1]!, m[2]!.trim());
  }
  const features = new Set((fields.get("Filesystem features") ?? "").split(/\s+/).filter(Boolean));
  return { fields, features, raw: r.stdout };
}

/** A fresh temp dir on disk (not tmpfs), for images and trees. */
export function scratchDir(prefix: string): string {
  const base = process.env.BANGER_TEST_TMP ?? "/var/tmp";
  try {
    return mkdtempSync(join(base, `banger-${prefix}-`));
  } catch {
    return mkdtempSync(join(tmpdir(), `banger-${prefix}-`));
  }
}
