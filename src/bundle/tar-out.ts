// The tar of a bundle: PAX (POSIX.1-2001) members written by hand, since a bundle holds only a
// few known files. Images are written as GNU's PAX sparse format 1.0 members, which GNU tar
// restores as sparse files and banger's bundle reader (read.ts) restores as holes: a 1 GiB
// image with 300 MB of data stores 300 MB.
const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** One 512-byte ustar header. */
function ustarHeader(name: string, size: number, mode: number, mtime: number, type: string, linkname = ""): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const enc = new TextEncoder();
  const put = (text: string, at: number, width: number) => h.set(enc.encode(text).subarray(0, width), at);
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  put("        ", 148, 8);
  put(type, 156, 1);
  put(linkname, 157, 100);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(octal(sum, 7) + " ", 148, 8);
  return h;
}

/** A PAX record "LEN key=value\n", where LEN counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

export function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Headers for a member: a PAX extended header (when `pax` has records), then the ustar header. */
export function memberHeaders(name: string, size: number, mtime: number, pax: Record<string, string> = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  const records = Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join("");
  if (records.length > 0) {
    const body = new TextEncoder().encode(records);
    out.push(ustarHeader("././@PaxHeader", body.length, 0o644, mtime, "x"), body, padding(body.length));
  }
  out.push(ustarHeader(name, size, 0o644, mtime, "0"));
  return out;
}

/** One member of a directory tree: a regular file ("0"), a directory ("5") or a symlink ("2"). */
export interface TreeEntry {
  name: string;
  type: "0" | "5" | "2";
  mode: number;
  size: number;
  mtime: number;
  linkname?: string;
}

/**
 * Headers for a tree member (kernel bundles' modules). Names and link targets that do not fit
 * the ustar fields (100 bytes) go into PAX path and linkpath records.
 */
export function entryHeaders(e: TreeEntry): Uint8Array[] {
  const enc = new TextEncoder();
  const name = e.type === "5" && !e.name.endsWith("/") ? `${e.name}/` : e.name;
  const pax: Record<string, string> = {};
  if (enc.encode(name).length > 100) pax.path = name;
  if (e.linkname !== undefined && enc.encode(e.linkname).length > 100) pax.linkpath = e.linkname;
  const out: Uint8Array[] = [];
  const records = Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join("");
  if (records.length > 0) {
    const body = enc.encode(records);
    out.push(ustarHeader("././@PaxHeader", body.length, 0o644, e.mtime, "x"), body, padding(body.length));
  }
  // The ustar fields keep a cut copy for tools that ignore PAX; readers that know PAX take the records.
  out.push(ustarHeader(name.slice(0, 100), e.type === "0" ? e.size : 0, e.mode & 0o7777, e.mtime, e.type, (e.linkname ?? "").slice(0, 100)));
  return out;
}

/**
 * The start of a sparse member's data: the map ("count\n" then "offset\nlength\n" per range,
 * padded to a block). A file ending in a hole gets a last, empty range at its size, as GNU tar
 * writes it, so the size survives tools that read only the map.
 */
export function sparseMap(ranges: [number, number][], realSize: number): Uint8Array {
  const list = ranges.map(([s, e]) => [s, e - s] as const);
  const last = ranges.at(-1);
  if (!last || last[1] < realSize) list.push([realSize, 0]);
  const text = `${list.length}\n` + list.map(([o, l]) => `${o}\n${l}\n`).join("");
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + padding(bytes.length).length);
  out.set(bytes);
  return out;
}

/** The PAX records of a sparse member (GNU format 1.0) and the name its ustar header carries. */
export function sparseHeaders(name: string, realSize: number, storedSize: number, mtime: number): Uint8Array[] {
  return memberHeaders(`./GNUSparseFile.0/${name}`, storedSize, mtime, {
    "GNU.sparse.major": "1",
    "GNU.sparse.minor": "0",
    "GNU.sparse.name": name,
    "GNU.sparse.realsize": String(realSize),
  });
}

/** Two zero blocks: the end of the archive. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);
