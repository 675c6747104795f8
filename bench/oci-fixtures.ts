// OCI image layouts for the pull cases, made from the Debian rootfs tar and cached next to it
// ($BANGER_FIXTURE_CACHE/bench/oci/, never committed). Deterministic: the same source tar gives
// byte-identical blobs (pigz -n, zstd, fixed config dates).
//   one layer:  the whole tar as one gzip (pigz -6) or zstd (-3) layer
//   5 layers:   the tar split by entries, plus replacements, whiteouts and an opaque directory
// Each layout is checked once with umoci (unpacked into a temp dir, the expected paths
// looked up) when it is built; the unpacked tree gives the image size the pipeline baseline gets.
//   bun bench/oci-fixtures.ts [--quick]     builds (or shows) the three layouts
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BENCH_CACHE, debianRootfs } from "./inputs.ts";
import { entryHeader, padTo512, TRAILER } from "./tar-writer.ts";
import { cString, imageSizeFor, mkfsInodeCount, octalOrBase256, parsePax, scanTar, type TarStats } from "./tar-scan.ts";

const OCI_DIR = join(BENCH_CACHE, "oci");
/** Bump when a fixture's content changes: the cached layouts are rebuilt under the new name. */
const VERSION = "v1";

export type Compression = "gzip" | "zstd";

export interface LayerInfo {
  digest: string;
  mediaType: string;
  compression: Compression;
  /** The blob inside the layout. */
  path: string;
  bytes: number;
  uncompressedBytes: number;
  entries: number;
}

export interface Expectations {
  /** Paths (no leading slash) that must not exist in the merged tree. */
  absent: string[];
  /** Regular files and the sha256 of their merged content. */
  content: { path: string; sha256: string }[];
  symlinks: { path: string; target: string }[];
}

export interface OciFixture {
  name: string;
  layout: string;
  tag: string;
  layers: LayerInfo[];
  blobBytes: number;
  uncompressedBytes: number;
  /** Of the merged tree (umoci's unpack). */
  stats: TarStats;
  imageSize: number;
  mkfsInodes: number | null;
  expect: Expectations;
  describe: string;
}

function log(msg: string): void {
  console.error(`[bench] ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Reading the source tar entry by entry, keeping each entry's byte range for raw copies.

export interface RawEntry {
  /** Normalized: no leading "./" or "/", no trailing "/"; "" for the root. */
  path: string;
  /** The name as written in the tar (prefix kept), for generated siblings. */
  rawName: string;
  type: string;
  /** First byte of the entry (its PAX/GNU extension headers included). */
  start: number;
  /** The ustar header block. */
  header: number;
  /** Start of the data and its length (regular files). */
  data: number;
  size: number;
  /** First byte after the entry (data padded to 512). */
  end: number;
  linkname: string;
  paxSize: boolean;
}

export function normPath(p: string): string {
  return p.replace(/^(\.\/|\/)+/, "").replace(/\/+$/, "").replace(/^\.$/, "");
}

export function readEntries(buf: Uint8Array): RawEntry[] {
  const out: RawEntry[] = [];
  let pos = 0;
  let start = 0;
  let pax = new Map<string, string>();
  let longName: string | null = null;
  let longLink: string | null = null;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const size = octalOrBase256(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    const dataAt = pos + 512;
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      const d = buf.subarray(dataAt, dataAt + size);
      if (type === "x") pax = parsePax(Buffer.from(d).toString("utf8"));
      if (type === "L") longName = cString(d, 0, size);
      if (type === "K") longLink = cString(d, 0, size);
      pos = dataAt + padTo512(size);
      continue;
    }
    const realSize = pax.has("size") ? Number(pax.get("size")) : size;
    const rawName = pax.get("path") ?? longName ?? cString(h, 345, 155) + (h[345] ? "/" : "") + cString(h, 0, 100);
    const linkname = pax.get("linkpath") ?? longLink ?? cString(h, 157, 100);
    const isFile = type === "0" || type === "\0" || type === "7";
    const end = dataAt + (isFile ? padTo512(realSize) : 0);
    out.push({ path: normPath(rawName), rawName, type: type === "\0" ? "0" : type, start, header: pos, data: dataAt, size: isFile ? realSize : 0, end, linkname, paxSize: pax.has("size") });
    pos = end;
    start = end;
    pax = new Map();
    longName = null;
    longLink = null;
  }
  return out;
}

const isFile = (e: RawEntry) => e.type === "0" || e.type === "7";

// ---------------------------------------------------------------------------------------------
// Writing layer tars: raw copies of source entries and generated entries.

class LayerTar {
  private fd: number;
  entries = 0;
  bytes = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }
  write(b: Uint8Array): void {
    let o = 0;
    while (o < b.length) o += writeSync(this.fd, b, o, b.length - o);
    this.bytes += b.length;
  }
  raw(src: Uint8Array, e: RawEntry): void {
    this.write(src.subarray(e.start, e.end));
    this.entries++;
  }
  /** The source entry with new data (its headers kept; the ustar size field patched if it changed). */
  replaced(src: Uint8Array, e: RawEntry, data: Uint8Array): void {
    if (e.paxSize) throw new Error(`cannot resize ${e.path}: its size is in a PAX header`);
    this.write(src.subarray(e.start, e.header));
    const h = new Uint8Array(src.subarray(e.header, e.header + 512));
    const digits = data.length.toString(8).padStart(11, "0");
    for (let i = 0; i < 11; i++) h[124 + i] = digits.charCodeAt(i);
    h[135] = 0;
    for (let i = 0; i < 8; i++) h[148 + i] = 0x20;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += h[i]!;
    const c = sum.toString(8).padStart(6, "0");
    for (let i = 0; i < 6; i++) h[148 + i] = c.charCodeAt(i);
    h[154] = 0;
    h[155] = 0x20;
    this.write(h);
    this.data(data);
    this.entries++;
  }
  generated(e: Parameters<typeof entryHeader>[0], data?: Uint8Array): void {
    this.write(entryHeader({ ...e, size: data?.length ?? 0 }));
    if (data) this.data(data);
    this.entries++;
  }
  private data(d: Uint8Array): void {
    this.write(d);
    const pad = padTo512(d.length) - d.length;
    if (pad) this.write(new Uint8Array(pad));
  }
  close(): void {
    this.write(TRAILER);
    closeSync(this.fd);
  }
}

function sha256(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) h.update(chunk);
  return h.digest("hex");
}

/** Deterministic bytes (xorshift32 over a seed): incompressible-ish content for generated files. */
function pseudoRandom(seed: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const enc = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// The quick variants' source: the Debian tar with every directory, link and device but only
// every 4th regular file (hardlink targets always kept).

export async function debianQuarter(): Promise<string> {
  const path = join(BENCH_CACHE, `debian-quarter-${VERSION}.tar`);
  if (existsSync(path)) return path;
  const src = readFileSync(await debianRootfs());
  const entries = readEntries(src);
  const linkTargets = new Set(entries.filter((e) => e.type === "1").map((e) => normPath(e.linkname)));
  mkdirSync(BENCH_CACHE, { recursive: true });
  const tmp = `${path}.tmp${process.pid}`;
  const w = new LayerTar(tmp);
  let n = 0;
  for (const e of entries) {
    if (isFile(e) && !linkTargets.has(e.path) && n++ % 4 !== 0) continue;
    w.raw(src, e);
  }
  w.close();
  renameSync(tmp, path);
  log(`wrote ${path} (${w.entries} entries)`);
  return path;
}

// ---------------------------------------------------------------------------------------------
// The five layers.

/** The directory made opaque in layer 4 (every lower child hidden; most re-added in layer 4). */
export const OPAQUE_DIR = "usr/share/locale";
/** The directory deleted by a whiteout in layer 5. */
export const DELETED_DIR = "usr/share/zoneinfo/right";

interface LayerPlan {
  tars: string[];
  expect: Expectations;
}

function whiteoutName(e: RawEntry): string {
  const p = e.rawName.replace(/\/+$/, "");
  const slash = p.lastIndexOf("/");
  return `${p.slice(0, slash + 1)}.wh.${p.slice(slash + 1)}`;
}

/**
 * Splits the source tar into 5 layer tars in `dir`:
 *  1. every directory and the first half of the other entries (by file bytes, in tar order)
 *  2. the next sixth, and ~1/31 of layer 1's files replaced by same-size new content; one
 *     file replaced by a symlink
 *  3. the next sixth, ~1/31 of layer 1-2's files deleted (`.wh.NAME`),
 *     another ~1/31 replaced by content of another size
 *  4. the last sixth, and OPAQUE_DIR replaced: its `.wh..wh..opq` marker, then its directories
 *     and 3 of every 4 of its files again
 *  5. small: /etc/hostname, /opt/bench (16 new files, ~1 MB), DELETED_DIR and one file of
 *     layer 4 deleted
 * Hardlinked paths are never replaced or deleted.
 */
function planLayers(src: Uint8Array, dir: string): LayerPlan {
  const entries = readEntries(src);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const opq = byPath.get(OPAQUE_DIR);
  const del = byPath.get(DELETED_DIR);
  if (!opq || opq.type !== "5") throw new Error(`source tar has no directory ${OPAQUE_DIR}`);
  if (!del || del.type !== "5") throw new Error(`source tar has no directory ${DELETED_DIR}`);
  const under = (e: RawEntry, d: string) => e.path.startsWith(d + "/");
  const hardlinked = new Set<string>();
  for (const e of entries) if (e.type === "1") hardlinked.add(e.path).add(normPath(e.linkname));
  for (const p of hardlinked) if (p.startsWith(OPAQUE_DIR + "/") || p.startsWith(DELETED_DIR + "/")) throw new Error(`hardlink ${p} inside ${OPAQUE_DIR} or ${DELETED_DIR}`);

  // Layer of every entry: directories in 1, the rest by cumulative file bytes.
  const total = entries.reduce((s, e) => s + e.size, 0);
  const layerOf = new Map<RawEntry, number>();
  let cum = 0;
  for (const e of entries) {
    if (e.type === "5") layerOf.set(e, 0);
    else {
      const f = cum / total;
      layerOf.set(e, f < 0.5 ? 0 : f < 2 / 3 ? 1 : f < 5 / 6 ? 2 : 3);
      cum += e.size;
    }
  }

  const expect: Expectations = { absent: [], content: [], symlinks: [] };
  const L = [0, 1, 2, 3, 4].map((i) => new LayerTar(join(dir, `layer${i + 1}.tar`)));
  for (const e of entries) {
    const l = layerOf.get(e)!;
    if (l === 3 && (e === opq || under(e, OPAQUE_DIR))) continue; // written with the opaque dir below
    L[l]!.raw(src, e);
  }

  // Candidates for replacement and deletion: non-empty regular files outside the two special
  // directories, not hardlinked, in layers 1-2.
  const candidates = entries.filter((e) => isFile(e) && e.size > 0 && layerOf.get(e)! <= 1 && !hardlinked.has(e.path) && !under(e, OPAQUE_DIR) && !under(e, DELETED_DIR));
  let symlinked = false;
  candidates.forEach((e, i) => {
    const k = i % 31;
    const data = src.subarray(e.data, e.data + e.size);
    if (k === 0) {
      // Deleted in layer 3.
      L[2]!.generated({ name: whiteoutName(e), type: "file", mode: 0o644, uid: 0, gid: 0 });
      expect.absent.push(e.path);
    } else if (k === 10 && layerOf.get(e) === 0) {
      // Replaced in layer 2, same size.
      const nd = data.map((b) => b ^ 0xa5);
      L[1]!.replaced(src, e, nd);
      expect.content.push({ path: e.path, sha256: sha256(nd) });
    } else if (k === 20) {
      // Replaced in layer 3 by content of another size.
      const nd = new Uint8Array(e.size + 40);
      nd.set(enc.encode(`replaced in layer 3: ${String(i).padStart(18, "0")}\n`.slice(0, 40)));
      nd.set(data.slice().reverse(), 40);
      L[2]!.replaced(src, e, nd);
      expect.content.push({ path: e.path, sha256: sha256(nd) });
    } else if (k === 5 && !symlinked && layerOf.get(e) === 0) {
      // A file replaced by a symlink (another type) in layer 2.
      symlinked = true;
      L[1]!.generated({ name: e.rawName, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "/etc/hostname" });
      expect.symlinks.push({ path: e.path, target: "/etc/hostname" });
    }
  });

  // Layer 4: the opaque directory, re-populated with 3 of every 4 files.
  L[3]!.raw(src, opq);
  L[3]!.generated({ name: `${opq.rawName.replace(/\/+$/, "")}/.wh..wh..opq`, type: "file", mode: 0o644, uid: 0, gid: 0 });
  let n = 0;
  for (const e of entries) {
    if (!under(e, OPAQUE_DIR)) continue;
    if (isFile(e) && n++ % 4 === 0) {
      expect.absent.push(e.path);
      continue;
    }
    L[3]!.raw(src, e);
    if (isFile(e) && e.size > 0 && expect.content.length < 400) expect.content.push({ path: e.path, sha256: sha256(src.subarray(e.data, e.data + e.size)) });
  }

  // Layer 5: small.
  const host = enc.encode("banger-bench\n");
  L[4]!.generated({ name: "./etc/hostname", type: "file", mode: 0o644, uid: 0, gid: 0 }, host);
  expect.content.push({ path: "etc/hostname", sha256: sha256(host) });
  L[4]!.generated({ name: "./opt/bench/", type: "dir", mode: 0o755, uid: 1000, gid: 1000 });
  for (let i = 0; i < 16; i++) {
    const d = pseudoRandom(i + 1, 1024 << (i % 9));
    L[4]!.generated({ name: `./opt/bench/file-${String(i).padStart(2, "0")}.bin`, type: "file", mode: 0o640, uid: 1000, gid: 1000 }, d);
    expect.content.push({ path: `opt/bench/file-${String(i).padStart(2, "0")}.bin`, sha256: sha256(d) });
  }
  L[4]!.generated({ name: whiteoutName(del), type: "file", mode: 0o644, uid: 0, gid: 0 });
  expect.absent.push(DELETED_DIR);
  const last4 = entries.filter((e) => isFile(e) && layerOf.get(e) === 3 && !hardlinked.has(e.path) && !under(e, OPAQUE_DIR) && !under(e, DELETED_DIR)).at(-1);
  if (last4) {
    L[4]!.generated({ name: whiteoutName(last4), type: "file", mode: 0o644, uid: 0, gid: 0 });
    expect.absent.push(last4.path);
  }
  for (const t of L) t.close();
  // Content expectations must not name a path deleted later.
  const gone = (p: string) => expect.absent.some((a) => p === a || p.startsWith(a + "/"));
  expect.content = expect.content.filter((c) => !gone(c.path));
  return { tars: L.map((t) => t.path), expect };
}

// ---------------------------------------------------------------------------------------------
// The layout.

const MT = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

function run(argv: string[], stdoutTo?: string): void {
  const fd = stdoutTo ? openSync(stdoutTo, "w") : undefined;
  try {
    const r = Bun.spawnSync(argv, { stdout: fd ?? "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.toString().slice(0, 500)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function writeBlob(layout: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${sha256(bytes)}`;
  writeFileSync(join(layout, "blobs/sha256", digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** Compresses each layer tar into the layout and writes config, manifest, index.json (tagged). */
async function writeLayout(layout: string, tag: string, layers: { tar: string; compression: Compression }[]): Promise<LayerInfo[]> {
  mkdirSync(join(layout, "blobs/sha256"), { recursive: true });
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const infos: LayerInfo[] = [];
  const diffIds: string[] = [];
  for (const [i, l] of layers.entries()) {
    const blobTmp = join(layout, `layer${i}.tmp`);
    if (l.compression === "gzip") run(["pigz", "-6", "-n", "-c", l.tar], blobTmp);
    else run(["zstd", "-3", "-q", "-c", l.tar], blobTmp);
    const digest = `sha256:${await sha256File(blobTmp)}`;
    const path = join(layout, "blobs/sha256", digest.slice(7));
    renameSync(blobTmp, path);
    diffIds.push(`sha256:${await sha256File(l.tar)}`);
    infos.push({ digest, mediaType: MT[l.compression], compression: l.compression, path, bytes: statSync(path).size, uncompressedBytes: statSync(l.tar).size, entries: readEntries(readFileSync(l.tar)).length });
  }
  const created = "2026-01-01T00:00:00Z";
  const config = {
    created,
    architecture: process.arch === "arm64" ? "arm64" : "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["bash"] },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: infos.map((_, i) => ({ created, created_by: `banger bench layer ${i + 1}` })),
  };
  const cfg = await writeBlob(layout, enc.encode(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: cfg.digest, size: cfg.size },
    layers: infos.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes })),
  };
  const man = await writeBlob(layout, enc.encode(JSON.stringify(manifest)));
  const index = { schemaVersion: 2, mediaType: MT.index, manifests: [{ mediaType: MT.manifest, digest: man.digest, size: man.size, annotations: { "org.opencontainers.image.ref.name": tag } }] };
  writeFileSync(join(layout, "index.json"), JSON.stringify(index));
  return infos;
}

// ---------------------------------------------------------------------------------------------
// Checking a merged tree (umoci's unpack here; banger's image through debugfs in verify.ts).

/** TarStats of an unpacked tree, to size the image with the same rule as for a tar. */
export function treeStats(root: string): TarStats {
  const st: TarStats = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, other: 0, fileBytes: 0, fileBlocksBytes: 0, dirEntryBytes: 0, longSymlinks: 0, tarBytes: 0 };
  const seen = new Set<string>();
  const visit = (abs: string, name: string) => {
    const s = lstatSync(abs);
    st.entries++;
    st.dirEntryBytes += 8 + Math.ceil(Buffer.byteLength(name) / 4) * 4 + 4;
    if (s.isDirectory()) {
      st.dirs++;
      for (const c of readdirSync(abs)) visit(join(abs, c), c);
    } else if (s.isFile()) {
      const key = `${s.dev}:${s.ino}`;
      if (s.nlink > 1 && seen.has(key)) {
        st.hardlinks++;
        return;
      }
      seen.add(key);
      st.files++;
      st.fileBytes += s.size;
      st.fileBlocksBytes += Math.ceil(s.size / 4096) * 4096;
    } else if (s.isSymbolicLink()) {
      st.symlinks++;
      if (Buffer.byteLength(readlinkSync(abs)) >= 60) st.longSymlinks++;
    } else st.other++;
  };
  visit(root, "");
  return st;
}

/** Problems found checking the expectations against an extracted tree (empty: all good). */
export function checkTree(root: string, x: Expectations): string[] {
  const bad: string[] = [];
  const exists = (p: string) => {
    try {
      lstatSync(join(root, p));
      return true;
    } catch {
      return false;
    }
  };
  for (const p of x.absent) if (exists(p)) bad.push(`${p} should be absent`);
  for (const c of x.content) {
    if (!exists(c.path)) bad.push(`${c.path} missing`);
    else if (sha256(readFileSync(join(root, c.path))) !== c.sha256) bad.push(`${c.path} has the wrong content`);
  }
  for (const l of x.symlinks) {
    let t = "";
    try {
      t = readlinkSync(join(root, l.path));
    } catch {}
    if (t !== l.target) bad.push(`${l.path} should be a symlink to ${l.target}`);
  }
  return bad;
}

// ---------------------------------------------------------------------------------------------

interface Made {
  layers: { tar: string; compression: Compression }[];
  expect: Expectations;
  /** Stats of the merged tree when known without unpacking (one layer: the tar's). */
  stats?: TarStats;
}

/**
 * Builds the layout unless cached. Layouts whose layers are all gzip are unpacked once with
 * umoci and checked against the expectations (umoci 0.4.7, Debian's, cannot read zstd layers).
 */
async function buildFixture(name: string, tag: string, describe: string, make: (tmp: string) => Promise<Made>): Promise<OciFixture> {
  const root = join(OCI_DIR, `${name}-${VERSION}`);
  const metaPath = join(root, "fixture.json");
  if (existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, "utf8")) as OciFixture;
  mkdirSync(OCI_DIR, { recursive: true });
  const tmp = `${root}.tmp${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "work"), { recursive: true });
  try {
    log(`building OCI layout ${name} → ${root}`);
    const made = await make(join(tmp, "work"));
    const { layers, expect } = made;
    const infos = await writeLayout(join(tmp, "layout"), tag, layers);
    let stats = made.stats;
    if (layers.every((l) => l.compression === "gzip")) {
      // Check with umoci (the reference implementation); size the image from its tree.
      const bundle = join(tmp, "work/bundle");
      run(["umoci", "unpack", "--image", `${join(tmp, "layout")}:${tag}`, bundle]);
      const bad = checkTree(join(bundle, "rootfs"), expect);
      if (bad.length) throw new Error(`umoci's unpack of ${name} does not match the fixture's expectations (${bad.length} problems): ${bad.slice(0, 5).join("; ")}`);
      stats ??= treeStats(join(bundle, "rootfs"));
      log(`${name}: umoci unpack checked (${expect.absent.length} absent paths, ${expect.content.length} contents, ${expect.symlinks.length} symlinks)`);
    }
    if (!stats) throw new Error(`${name}: no stats for the merged tree`);
    rmSync(join(tmp, "work"), { recursive: true, force: true });
    const imageSize = imageSizeFor(stats);
    const fx: OciFixture = {
      name,
      layout: join(root, "layout"),
      tag,
      layers: infos.map((l) => ({ ...l, path: l.path.replace(tmp, root) })),
      blobBytes: infos.reduce((s, l) => s + l.bytes, 0),
      uncompressedBytes: infos.reduce((s, l) => s + l.uncompressedBytes, 0),
      stats,
      imageSize,
      mkfsInodes: mkfsInodeCount(stats, imageSize),
      expect,
      describe,
    };
    writeFileSync(join(tmp, "fixture.json"), JSON.stringify(fx, null, 2));
    rmSync(root, { recursive: true, force: true });
    renameSync(tmp, root);
    return fx;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

const sourceTar = (quick: boolean) => (quick ? debianQuarter() : debianRootfs());
const srcName = (quick: boolean) => (quick ? "debian-quarter" : "debian");

/** The Debian rootfs as one layer. */
export async function oneLayerFixture(compression: Compression, quick: boolean): Promise<OciFixture> {
  const src = await sourceTar(quick);
  const what = quick ? "a quarter of the Debian rootfs (every dir/link/device, every 4th file)" : "the Debian bookworm rootfs";
  return buildFixture(`${srcName(quick)}-${compression}`, compression, `${what} as one ${compression === "gzip" ? "gzip (pigz -6)" : "zstd -3"} layer, OCI layout`, async () => {
    // The tar itself is the layer (compressed straight from the fixture).
    return { layers: [{ tar: src, compression }], expect: { absent: [], content: [], symlinks: [] }, stats: scanTar(src) };
  });
}

/** The Debian rootfs split across five layers with replacements, whiteouts and an opaque dir. */
export async function fiveLayerFixture(quick: boolean): Promise<OciFixture> {
  const srcPath = await sourceTar(quick);
  const what = quick ? "a quarter of the Debian rootfs" : "the Debian bookworm rootfs";
  return buildFixture(`${srcName(quick)}-5-layers`, "5-layers", `${what} split across 5 gzip layers: files replaced in layers 2-3, ~3% deleted by \`.wh.\` files, /${OPAQUE_DIR} replaced through \`.wh..wh..opq\`, /${DELETED_DIR} deleted, a small top layer`, async (tmp) => {
    const src = readFileSync(srcPath);
    const { tars, expect } = planLayers(src, tmp);
    // All gzip: umoci 0.4.7 (the pipeline baseline, Debian bookworm's) cannot read zstd layers.
    return { layers: tars.map((tar) => ({ tar, compression: "gzip" as const })), expect };
  });
}

if (import.meta.main) {
  const quick = process.argv.includes("--quick");
  for (const fx of [await oneLayerFixture("gzip", quick), await oneLayerFixture("zstd", quick), await fiveLayerFixture(quick)]) {
    console.log(`${fx.name}: ${fx.layout}:${fx.tag}; ${fx.layers.map((l) => `${l.compression} ${(l.bytes / 1e6).toFixed(1)} MB (${(l.uncompressedBytes / 1e6).toFixed(1)} MB, ${l.entries} entries)`).join(", ")}; merged ${fx.stats.entries} entries; image ${(fx.imageSize / 2 ** 20).toFixed(0)} MiB; checks: ${fx.expect.absent.length} absent, ${fx.expect.content.length} contents, ${fx.expect.symlinks.length} symlinks`);
  }
}
