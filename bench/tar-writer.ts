// A small, fast tar writer for benchmark inputs: ustar headers, a PAX extended header when a
// value does not fit (sizes >= 8 GiB, long names). Writes through one fd in large chunks.
import { openSync, writeSync, closeSync } from "node:fs";

export const BLOCK = 512;

export type EntryType = "file" | "dir" | "symlink";

export interface TarEntry {
  name: string;
  type: EntryType;
  mode: number; // permission bits (e.g. 0o644)
  uid: number;
  gid: number;
  size?: number; // regular files only
  mtime?: number; // seconds
  linkname?: string;
}

const TYPEFLAG: Record<EntryType, number> = { file: 0x30, dir: 0x35, symlink: 0x32 };
const USTAR_MAX_SIZE = 0o77777777777; // 11 octal digits
const encoder = new TextEncoder();

function putString(buf: Uint8Array, off: number, len: number, text: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > len) throw new Error(`tar field too long (${bytes.length} > ${len}): "${text}"`);
  buf.set(bytes, off);
}

function putOctal(buf: Uint8Array, off: number, len: number, value: number): void {
  // len-1 zero-padded octal digits, then NUL.
  const digits = value.toString(8);
  if (digits.length > len - 1) throw new Error(`tar octal field overflow: ${value} in ${len} bytes`);
  const padded = digits.padStart(len - 1, "0");
  for (let i = 0; i < padded.length; i++) buf[off + i] = padded.charCodeAt(i);
  buf[off + len - 1] = 0;
}

function finishChecksum(buf: Uint8Array, off: number): void {
  for (let i = 0; i < 8; i++) buf[off + 148 + i] = 0x20;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[off + i]!;
  const digits = sum.toString(8).padStart(6, "0");
  for (let i = 0; i < 6; i++) buf[off + 148 + i] = digits.charCodeAt(i);
  buf[off + 148 + 6] = 0;
  buf[off + 148 + 7] = 0x20;
}

/** Writes one ustar header block at buf[off..off+512). buf must be zeroed there. */
function ustarHeader(buf: Uint8Array, off: number, e: { name: string; typeflag: number; mode: number; uid: number; gid: number; size: number; mtime: number; linkname?: string }): void {
  putString(buf, off, 100, e.name);
  putOctal(buf, off + 100, 8, e.mode);
  putOctal(buf, off + 108, 8, e.uid);
  putOctal(buf, off + 116, 8, e.gid);
  putOctal(buf, off + 124, 12, e.size);
  putOctal(buf, off + 136, 12, e.mtime);
  buf[off + 156] = e.typeflag;
  if (e.linkname) putString(buf, off + 157, 100, e.linkname);
  putString(buf, off + 257, 6, "ustar");
  buf[off + 263] = 0x30;
  buf[off + 264] = 0x30;
  finishChecksum(buf, off);
}

function paxRecords(records: [string, string][]): Uint8Array {
  let text = "";
  for (const [k, v] of records) {
    const body = ` ${k}=${v}\n`;
    const bodyLen = encoder.encode(body).length;
    // The length counts its own digits: iterate until stable (at most twice).
    let len = bodyLen + 1;
    while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
    text += `${len}${body}`;
  }
  return encoder.encode(text);
}

export function padTo512(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/**
 * The header block(s) of one entry: an optional PAX 'x' header (+ its data) and the ustar header.
 * The entry's data (size bytes, padded to 512) must follow.
 */
export function entryHeader(e: TarEntry): Uint8Array {
  const size = e.type === "file" ? (e.size ?? 0) : 0;
  const mtime = e.mtime ?? 1_700_000_000;
  const pax: [string, string][] = [];
  let name = e.name;
  if (encoder.encode(name).length > 100) {
    pax.push(["path", name]);
    name = name.slice(0, 99);
  }
  if (size > USTAR_MAX_SIZE) pax.push(["size", String(size)]);
  if (e.linkname && encoder.encode(e.linkname).length > 100) throw new Error(`link target too long for this writer: ${e.linkname}`);
  let paxBytes: Uint8Array | null = null;
  if (pax.length) paxBytes = paxRecords(pax);
  const total = (paxBytes ? BLOCK + padTo512(paxBytes.length) : 0) + BLOCK;
  const buf = new Uint8Array(total);
  let off = 0;
  if (paxBytes) {
    ustarHeader(buf, 0, { name: `PaxHeaders/${name.slice(0, 80)}`, typeflag: 0x78, mode: 0o644, uid: 0, gid: 0, size: paxBytes.length, mtime });
    buf.set(paxBytes, BLOCK);
    off = BLOCK + padTo512(paxBytes.length);
  }
  ustarHeader(buf, off, {
    name,
    typeflag: TYPEFLAG[e.type],
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: size > USTAR_MAX_SIZE ? 0 : size,
    mtime,
    linkname: e.linkname,
  });
  return buf;
}

/** End-of-archive: two zero blocks. */
export const TRAILER = new Uint8Array(2 * BLOCK);

/** Buffered writer of tar bytes to a file, flushed in big chunks with plain write(2). */
export class TarFileWriter {
  private fd: number;
  private buf: Uint8Array;
  private used = 0;
  bytes = 0;
  entries = 0;

  constructor(path: string, chunk = 8 << 20) {
    this.fd = openSync(path, "w");
    this.buf = new Uint8Array(chunk);
  }

  private raw(data: Uint8Array): void {
    let src = 0;
    while (src < data.length) {
      const n = Math.min(data.length - src, this.buf.length - this.used);
      this.buf.set(data.subarray(src, src + n), this.used);
      this.used += n;
      src += n;
      if (this.used === this.buf.length) this.flush();
    }
    this.bytes += data.length;
  }

  private zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.buf.length - this.used);
      this.buf.fill(0, this.used, this.used + k);
      this.used += k;
      n -= k;
      this.bytes += k;
      if (this.used === this.buf.length) this.flush();
    }
  }

  flush(): void {
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off);
    this.used = 0;
  }

  /** Adds one entry; for files, data is the whole content (or produced by chunks()). */
  add(e: TarEntry, data?: Uint8Array): void {
    const size = e.type === "file" ? (data?.length ?? e.size ?? 0) : 0;
    this.raw(entryHeader({ ...e, size }));
    if (size) {
      this.raw(data!);
      this.zeros(padTo512(size) - size);
    }
    this.entries++;
  }

  /** Adds a file whose content is produced chunk by chunk (for multi-GiB files). */
  addStreamed(e: TarEntry, size: number, chunks: Iterable<Uint8Array>): void {
    this.raw(entryHeader({ ...e, type: "file", size }));
    let written = 0;
    for (const c of chunks) {
      this.raw(c);
      written += c.length;
    }
    if (written !== size) throw new Error(`streamed entry ${e.name}: wrote ${written} bytes, header says ${size}`);
    this.zeros(padTo512(size) - size);
    this.entries++;
  }

  close(): void {
    this.raw(TRAILER);
    this.flush();
    closeSync(this.fd);
  }
}
