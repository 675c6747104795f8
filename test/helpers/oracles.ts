// e2fsprogs as test oracles: e2fsck (check + preen-changes-nothing), debugfs (stat, ea_list,
// htree_dump) and dumpe2fs (superblock header). Real tools from /usr/sbin, never mocks.
// Every failure message carries the tool's full output so a red test explains itself.
import { mkdtempSync, rmSync, openSync, readSync, closeSync, fstatSync, readFileSync } from "node:fs";
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

function isVolatileSuperblockByte(offset: number): boolean {
  return VOLATILE_SUPERBLOCK_FIELDS.some(([off, len]) => offset >= 1024 + off && offset < 1024 + off + len);
}

let lseek: ((fd: number, offset: number, whence: number) => number) | null | undefined;

/** lseek(2) through bun:ffi, for SEEK_DATA/SEEK_HOLE (node:fs has no way to ask). */
function libcLseek(): ((fd: number, offset: number, whence: number) => number) | null {
  if (lseek !== undefined) return lseek;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", { lseek: { args: [FFIType.i32, FFIType.i64, FFIType.i32], returns: FFIType.i64 } });
    lseek = (fd, offset, whence) => Number(libc.symbols.lseek(fd, offset, whence));
  } catch {
    lseek = null;
  }
  return lseek;
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/**
 * The [start, end) ranges of a file that may hold data (everything else is a hole and reads
 * as zeros). Falls back to the whole file when SEEK_DATA is unavailable.
 */
export function dataSegments(fd: number, size: number): [number, number][] {
  const ls = libcLseek();
  if (!ls) return size > 0 ? [[0, size]] : [];
  const out: [number, number][] = [];
  let off = 0;
  while (off < size) {
    const d = ls(fd, off, SEEK_DATA);
    if (d < 0) break; // ENXIO: no data past off
    const h = ls(fd, d, SEEK_HOLE);
    const end = h < 0 ? size : Math.min(h, size);
    out.push([d, end]);
    off = end;
  }
  return out;
}

function mergeSegments(a: [number, number][], b: [number, number][]): [number, number][] {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [s, e] of all) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * Byte offsets where two files differ (at most `max`), reading only their data segments (holes
 * are zeros), ignoring the volatile superblock fields when asked. Empty list = identical.
 */
export function differingOffsets(a: string, b: string, opts: { ignoreVolatileSuperblock?: boolean; max?: number } = {}): number[] {
  const max = opts.max ?? 20;
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    const sa = fstatSync(fa).size;
    const sb = fstatSync(fb).size;
    if (sa !== sb) return [Math.min(sa, sb)];
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    const diffs: number[] = [];
    for (const [start, end] of mergeSegments(dataSegments(fa, sa), dataSegments(fb, sb))) {
      for (let pos = start; pos < end; pos += ba.length) {
        const len = Math.min(ba.length, end - pos);
        const na = readSync(fa, ba, 0, len, pos);
        const nb = readSync(fb, bb, 0, len, pos);
        if (na !== len || nb !== len) throw new Error(`short read at ${pos} comparing ${a} and ${b}`);
        if (ba.subarray(0, len).equals(bb.subarray(0, len))) continue;
        for (let i = 0; i < len; i++) {
          if (ba[i] === bb[i] || (opts.ignoreVolatileSuperblock && isVolatileSuperblockByte(pos + i))) continue;
          diffs.push(pos + i);
          if (diffs.length >= max) return diffs;
        }
      }
    }
    return diffs;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/**
 * The image passes `e2fsck -fn` (exit 0), and `e2fsck -fp` on a sparse copy exits 0 and
 * leaves the copy byte-identical apart from the superblock bookkeeping any forced check
 * rewrites (VOLATILE_SUPERBLOCK_FIELDS): a preen pass that silently "optimizes directories"
 * or fixes counts means we wrote something e2fsprogs would not have. Throws with the full
 * outputs and the first differing byte offsets otherwise. (Byte comparison over the data
 * segments rather than two sha256 passes: hashing multi-GiB sparse images took a minute.)
 */
export function e2fsckClean(image: string): void {
  const e2fsck = toolPath("e2fsck");
  const check = run([e2fsck, "-fn", image]);
  // Exit 0 is not enough: some answered-"no" problems ("... IGNORED", "Fix? no") still exit 0.
  const unexpected = `${check.stdout}\n${check.stderr}`
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^Pass [1-5]: [A-Z]/.test(l) && !/^e2fsck \d/.test(l) && !/: \d+\/\d+ files \(.*\), \d+\/\d+ blocks$/.test(l));
  if (check.exitCode !== 0 || unexpected.length > 0) {
    throw new Error(`e2fsck -fn ${image} exited ${check.exitCode}${unexpected.length ? " with unexpected output" : ""}\n${check.stdout}${check.stderr}`);
  }
  const dir = mkdtempSync(join(dirname(image), ".e2fsck-preen-"));
  const copy = join(dir, "copy.img");
  try {
    runOk(["cp", "--sparse=always", image, copy]);
    const preen = run([e2fsck, "-fp", copy]);
    if (preen.exitCode !== 0) {
      throw new Error(`e2fsck -fp (copy of ${image}) exited ${preen.exitCode}\n${preen.stdout}${preen.stderr}`);
    }
    const diffs = differingOffsets(image, copy, { ignoreVolatileSuperblock: true });
    if (diffs.length) {
      throw new Error(
        `e2fsck -fp changed a copy of ${image} although it exited 0; first changed byte offsets: ` +
          `${diffs.map((d) => `${d} (block ${Math.floor(d / 4096)} +${d % 4096})`).join(", ")}\n` +
          `--- e2fsck -fp said\n${preen.stdout}${preen.stderr}\n--- e2fsck -fn said\n${check.stdout}${check.stderr}`,
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
  /** Values debugfs stat does not print (long ones) are null; ea_list prints them all. */
  xattrs: Map<string, Buffer | null>;
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

function parseEaLines(raw: string): Map<string, Buffer | null> {
  const xattrs = new Map<string, Buffer | null>();
  const sect = raw.indexOf("Extended attributes:");
  if (sect < 0) return xattrs;
  // debugfs prints either hex bytes or a quoted string; values may run without a final newline.
  const re = /^ {2}(\S+) \((\d+)\)(?: = (?:"((?:[^"\\]|\\.)*)"|((?:[0-9a-f]{2} )*[0-9a-f]{2}) ?))?/gm;
  for (const m of raw.slice(sect).matchAll(re)) {
    const len = Number(m[2]);
    let value: Buffer | null;
    if (m[3] !== undefined) value = unquoteDebugfs(m[3]);
    else if (m[4] !== undefined) value = Buffer.from(m[4].replaceAll(" ", ""), "hex");
    else value = len === 0 ? Buffer.alloc(0) : null;
    if (value !== null && value.length !== len) {
      throw new Error(`debugfs xattr ${m[1]}: printed ${value.length} bytes but says (${len})\n${raw}`);
    }
    xattrs.set(m[1]!, value);
  }
  return xattrs;
}

/** debugfs `ea_get -f FILE PATH NAME`: the raw value (ea_list/stat skip long values). */
export function debugfsEaGet(image: string, path: string, name: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "banger-ea-get-"));
  try {
    const file = join(dir, "value");
    debugfs(image, `ea_get -f ${file} "${path}" ${name}`);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** debugfs `ea_list PATH`: name → value bytes (long values fetched with ea_get). */
export function debugfsEaList(image: string, path: string): Map<string, Buffer> {
  const raw = debugfs(image, `ea_list "${path}"`);
  const out = new Map<string, Buffer>();
  for (const [k, v] of parseEaLines(raw)) {
    out.set(k, v ?? debugfsEaGet(image, path, k));
  }
  return out;
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
