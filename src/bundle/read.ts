// Unpacking an image bundle (write.ts's format) into a directory, as it streams in: only
// manifest.json (first), rootfs.ext4 and work-seed.ext4 are accepted, each once, as plain names;
// sparse members get their holes back; the checksums in the manifest are checked at the end.
// Anything else is an error naming the bundle and the member; the caller removes the directory.
import fs from "node:fs";
import path from "node:path";
import { parseBundleManifest, type BundleManifest } from "./manifest.ts";
import { BUNDLE_MANIFEST, BUNDLE_ROOTFS, BUNDLE_WORK_SEED, sparseFileSha256 } from "./write.ts";

const BLOCK = 512;
const MAX_MANIFEST = 64 << 10;
const MAX_PAX = 64 << 10;
const MAX_MAP = 1 << 20;

export class BundleError extends Error {
  override name = "BundleError";
}

/** Pulls exact byte counts out of a chunked stream. Chunks may be reused by their producer: bytes are copied or consumed at once. */
export class ByteReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** Stops the source (it may hold a file open): the end marker comes before its last bytes. */
  async close(): Promise<void> {
    await this.it.return?.();
  }

  private async fill(): Promise<boolean> {
    while (this.at >= this.chunk.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.chunk = r.value;
      this.at = 0;
    }
    return true;
  }

  /** Exactly n bytes (copied), or null at a clean end before the first byte. */
  async read(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) {
        if (got === 0) return null;
        throw new BundleError(`the archive ends in the middle of a block (truncated)`);
      }
      const take = Math.min(n - got, this.chunk.length - this.at);
      out.set(this.chunk.subarray(this.at, this.at + take), got);
      this.at += take;
      got += take;
    }
    return out;
  }

  /** Hands the next n bytes to `sink` piece by piece (no copy). */
  async stream(n: number, sink: (piece: Uint8Array) => void): Promise<void> {
    while (n > 0) {
      if (!(await this.fill())) throw new BundleError("the archive ends inside a member (truncated)");
      const take = Math.min(n, this.chunk.length - this.at);
      sink(this.chunk.subarray(this.at, this.at + take));
      this.at += take;
      n -= take;
    }
  }
}

interface Header {
  name: string;
  size: number;
  type: string;
}

function field(h: Uint8Array, at: number, width: number): string {
  const raw = h.subarray(at, at + width);
  const end = raw.indexOf(0);
  return new TextDecoder("latin1").decode(end < 0 ? raw : raw.subarray(0, end));
}

function parseHeader(h: Uint8Array): Header {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  const stored = parseInt(field(h, 148, 8).trim(), 8);
  if (stored !== sum) throw new BundleError("a tar header's checksum is wrong (not a bundle, or corrupt)");
  const prefix = field(h, 345, 155);
  const name = field(h, 0, 100);
  const size = parseInt(field(h, 124, 12).trim() || "0", 8);
  if (!Number.isSafeInteger(size) || size < 0) throw new BundleError(`member "${name}": bad size field`);
  return { name: prefix ? `${prefix}/${name}` : name, size, type: field(h, 156, 1) || "0" };
}

function parsePax(body: Uint8Array): Map<string, string> {
  const text = new TextDecoder().decode(body);
  const out = new Map<string, string>();
  for (let i = 0; i < text.length; ) {
    const sp = text.indexOf(" ", i);
    const len = Number(text.slice(i, sp));
    if (sp < 0 || !Number.isSafeInteger(len) || len <= 0) throw new BundleError("a PAX header is malformed");
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq < 0) throw new BundleError("a PAX record has no '='");
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

const ALLOWED = new Set([BUNDLE_MANIFEST, BUNDLE_ROOTFS, BUNDLE_WORK_SEED]);

/** The member's file name, refused unless it is one of the bundle's files, named plainly. */
function memberName(h: Header, pax: Map<string, string>): string {
  const raw = pax.get("GNU.sparse.name") ?? pax.get("path") ?? h.name;
  const name = raw.replace(/^\.\//, "");
  if (!ALLOWED.has(name)) throw new BundleError(`unexpected member "${raw.slice(0, 200)}" (a bundle holds only ${[...ALLOWED].join(", ")}, without directories)`);
  return name;
}

export interface UnpackOptions {
  /** For messages: which bundle. */
  where: string;
  /** Refuse a bundle for another architecture ("amd64"). */
  arch?: string;
}

/** Unpacks a bundle's tar stream (already decompressed) into `dir`; returns its checked manifest. */
export function unpackBundle(tar: AsyncIterable<Uint8Array>, dir: string, opts: UnpackOptions): Promise<BundleManifest> {
  return readArchive(tar, opts.where, (r) => unpack(r, dir, opts));
}

/**
 * Runs `fn` on a reader of `tar`; errors get `where` in front, and the source is stopped at the
 * end (the end marker may come before its last bytes, and it may hold a file open). Shared with
 * kernel bundles (kernel-read.ts).
 */
export async function readArchive<T>(tar: AsyncIterable<Uint8Array>, where: string, fn: (r: ByteReader) => Promise<T>): Promise<T> {
  const reader = new ByteReader(tar[Symbol.asyncIterator]());
  try {
    return await fn(reader);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    if (!e.message.startsWith(where)) e.message = `${where}: ${e.message}`;
    throw e;
  } finally {
    await reader.close().catch(() => {});
  }
}

async function unpack(r: ByteReader, dir: string, opts: UnpackOptions): Promise<BundleManifest> {
  let manifest: BundleManifest | null = null;
  const seen = new Set<string>();
  let pax = new Map<string, string>();
  for (;;) {
    const block = await r.read(BLOCK);
    if (block === null) throw new BundleError("the archive ends without its end marker (truncated)");
    if (block.every((b) => b === 0)) break;
    const h = parseHeader(block);
    if (h.type === "x") {
      if (h.size > MAX_PAX) throw new BundleError(`a PAX header of ${h.size} bytes is too large`);
      pax = parsePax((await r.read(h.size + padLen(h.size)))!.subarray(0, h.size));
      continue;
    }
    if (h.type !== "0" && h.type !== "\0") throw new BundleError(`member "${h.name.slice(0, 200)}" is not a regular file (type ${JSON.stringify(h.type)})`);
    const name = memberName(h, pax);
    if (seen.has(name)) throw new BundleError(`member "${name}" appears twice`);
    seen.add(name);
    if (name === BUNDLE_MANIFEST) {
      if (seen.size !== 1) throw new BundleError("manifest.json must be the first member");
      if (h.size > MAX_MANIFEST) throw new BundleError(`manifest.json of ${h.size} bytes is too large`);
      const body = (await r.read(h.size + padLen(h.size)))!.subarray(0, h.size);
      manifest = parseBundleManifest(new TextDecoder().decode(body), "bundle");
      if (opts.arch && manifest.arch !== opts.arch) throw new BundleError(`the bundle is for ${manifest.arch}, this machine needs ${opts.arch}`);
    } else {
      if (!manifest) throw new BundleError("manifest.json must be the first member");
      await writeMember(r, h, pax, path.join(dir, name));
    }
    pax = new Map();
  }
  if (!manifest) throw new BundleError("no manifest.json");
  if (!seen.has(BUNDLE_ROOTFS)) throw new BundleError("no rootfs.ext4");
  checkFile(path.join(dir, BUNDLE_ROOTFS), manifest.rootfs_sha256, manifest.size_bytes);
  if (seen.has(BUNDLE_WORK_SEED) !== (manifest.work_seed_sha256 !== undefined)) throw new BundleError("work-seed.ext4 and the manifest's work_seed_sha256 must come together");
  if (manifest.work_seed_sha256) checkFile(path.join(dir, BUNDLE_WORK_SEED), manifest.work_seed_sha256);
  return manifest;
}

function padLen(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function checkFile(file: string, sha256: string, size?: number): void {
  const actualSize = fs.statSync(file).size;
  if (size !== undefined && actualSize !== size) throw new BundleError(`${path.basename(file)} is ${actualSize} bytes, the manifest says ${size}`);
  const got = sparseFileSha256(file);
  if (got !== sha256) throw new BundleError(`${path.basename(file)} has sha256 ${got}, the manifest says ${sha256}`);
}

/** A member into `file`: plain, or (GNU PAX sparse 1.0) its map then its data ranges, holes kept. */
async function writeMember(r: ByteReader, h: Header, pax: Map<string, string>, file: string): Promise<void> {
  const fd = fs.openSync(file, "wx", 0o644);
  try {
    let consumed = 0;
    let ranges: [number, number][] = [[0, h.size]];
    let realSize = h.size;
    if (pax.get("GNU.sparse.major") === "1" && pax.get("GNU.sparse.minor") === "0") {
      realSize = Number(pax.get("GNU.sparse.realsize"));
      if (!Number.isSafeInteger(realSize) || realSize < 0) throw new BundleError(`member "${path.basename(file)}": bad GNU.sparse.realsize`);
      const map = await readSparseMap(r, h.size, path.basename(file));
      consumed = map.bytes;
      ranges = map.ranges;
    } else if ([...pax.keys()].some((k) => k.startsWith("GNU.sparse."))) {
      throw new BundleError(`member "${path.basename(file)}": only GNU sparse format 1.0 is read`);
    }
    let expectEnd = 0;
    for (const [off, len] of ranges) {
      if (off < expectEnd || off + len > realSize) throw new BundleError(`member "${path.basename(file)}": its sparse map has overlapping or out-of-range entries`);
      expectEnd = off + len;
      let pos = off;
      await r.stream(len, (piece) => {
        for (let done = 0; done < piece.length; ) done += fs.writeSync(fd, piece, done, piece.length - done, pos + done);
        pos += piece.length;
      });
      consumed += len;
    }
    if (consumed !== h.size) throw new BundleError(`member "${path.basename(file)}": its sparse map covers ${consumed} bytes of ${h.size}`);
    await r.stream(padLen(h.size), () => {});
    fs.ftruncateSync(fd, realSize);
  } finally {
    fs.closeSync(fd);
  }
}

/** The map at the start of a sparse 1.0 member: decimal lines, padded to a block. */
async function readSparseMap(r: ByteReader, memberSize: number, name: string): Promise<{ ranges: [number, number][]; bytes: number }> {
  let text = "";
  let bytes = 0;
  const numbers: number[] = [];
  let count = -1;
  while (count < 0 || numbers.length < 2 * count) {
    if (bytes >= Math.min(memberSize, MAX_MAP)) throw new BundleError(`member "${name}": its sparse map is malformed or too large`);
    text += new TextDecoder("latin1").decode((await r.read(BLOCK))!);
    bytes += BLOCK;
    const lines = text.split("\n");
    text = lines.pop()!;
    for (const l of lines) {
      if (!/^\d+$/.test(l)) throw new BundleError(`member "${name}": its sparse map is malformed`);
      if (count < 0) count = Number(l);
      else numbers.push(Number(l));
    }
  }
  const ranges: [number, number][] = [];
  for (let i = 0; i < numbers.length; i += 2) ranges.push([numbers[i]!, numbers[i + 1]!]);
  return { ranges, bytes };
}
