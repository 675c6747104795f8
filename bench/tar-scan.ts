// Reads a tar's headers (skipping data with positional reads) to get the numbers the harness
// needs: entry count, bytes of file data, directories — to size every tool's image the same way.
import { openSync, readSync, closeSync, fstatSync } from "node:fs";

export interface TarStats {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  other: number;
  fileBytes: number;
  /** Bytes of data blocks a plain ext4 needs for regular files, 4 KiB granules, hardlinks once. */
  fileBlocksBytes: number;
  /** Directory entries, for directory block estimates. */
  dirEntryBytes: number;
  longSymlinks: number;
  tarBytes: number;
}

export function octalOrBase256(h: Uint8Array, off: number, len: number): number {
  if (h[off]! & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + h[off + i]!;
    return v;
  }
  let s = "";
  for (let i = 0; i < len; i++) {
    const c = h[off + i]!;
    if (c === 0 || c === 0x20) {
      if (s.length) break;
      continue;
    }
    s += String.fromCharCode(c);
  }
  return s.length ? parseInt(s, 8) : 0;
}

export function cString(h: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && h[end] !== 0) end++;
  return Buffer.from(h.subarray(off, end)).toString("utf8");
}

export function parsePax(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

export function scanTar(path: string): TarStats {
  const fd = openSync(path, "r");
  const tarBytes = fstatSync(fd).size;
  const st: TarStats = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, other: 0, fileBytes: 0, fileBlocksBytes: 0, dirEntryBytes: 0, longSymlinks: 0, tarBytes };
  const h = new Uint8Array(512);
  let pos = 0;
  let pax = new Map<string, string>();
  let longName: string | null = null;
  let longLink: string | null = null;
  try {
    for (;;) {
      if (readSync(fd, h, 0, 512, pos) < 512) break;
      if (h.every((b) => b === 0)) break;
      let size = octalOrBase256(h, 124, 12);
      const type = String.fromCharCode(h[156]!);
      pos += 512;
      const dataLen = (n: number) => Math.ceil(n / 512) * 512;
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        const data = new Uint8Array(size);
        readSync(fd, data, 0, size, pos);
        pos += dataLen(size);
        if (type === "x") pax = parsePax(Buffer.from(data).toString("utf8"));
        if (type === "L") longName = cString(data, 0, size);
        if (type === "K") longLink = cString(data, 0, size);
        continue;
      }
      if (pax.has("size")) size = Number(pax.get("size"));
      const name = pax.get("path") ?? longName ?? cString(h, 345, 155) + (h[345] ? "/" : "") + cString(h, 0, 100);
      const link = pax.get("linkpath") ?? longLink ?? cString(h, 157, 100);
      st.entries++;
      const base = name.replace(/\/+$/, "").split("/").pop() ?? "";
      st.dirEntryBytes += 8 + Math.ceil(Buffer.byteLength(base) / 4) * 4 + 4;
      if (type === "0" || type === "\0" || type === "7") {
        st.files++;
        st.fileBytes += size;
        st.fileBlocksBytes += Math.ceil(size / 4096) * 4096;
        pos += dataLen(size);
      } else if (type === "5") st.dirs++;
      else if (type === "2") {
        st.symlinks++;
        if (Buffer.byteLength(link) >= 60) st.longSymlinks++;
      } else if (type === "1") st.hardlinks++;
      else st.other++; // devices, fifos: no data
      pax = new Map();
      longName = null;
      longLink = null;
    }
  } finally {
    closeSync(fd);
  }
  return st;
}

const GiB = 1024 ** 3;

/**
 * The image size every tool gets: banger's default rule, max(1 GiB, used × 1.25), where used
 * counts file data blocks, directory blocks, long symlink blocks and 256-byte inodes.
 * Rounded up to 4 MiB.
 */
export function imageSizeFor(st: TarStats): number {
  const used = st.fileBlocksBytes + st.dirs * 4096 + Math.ceil(st.dirEntryBytes / 4096) * 4096 + st.longSymlinks * 4096 + st.entries * 256;
  const size = Math.max(GiB, used * 1.25);
  return Math.ceil(size / (4 << 20)) * (4 << 20);
}

/** Inode count to give mkfs.ext4 (-N) so it can hold every entry; null when its default suffices. */
export function mkfsInodeCount(st: TarStats, sizeBytes: number): number | null {
  const defaultInodes = Math.floor(sizeBytes / 16384);
  const need = Math.ceil(st.entries * 1.05) + 1024;
  return need > defaultInodes ? need : null;
}
