// Unpacking a kernel bundle (kernel-write.ts's format) into a fresh directory as it streams in.
// A bundle comes from a download, so it is read as hostile:
//   - only vmlinuz or vmlinux (one of them), initrd.img and modules/ at the top; below modules/
//     directories, regular files and symlinks, each name once;
//   - no absolute names, no "." or ".." components, printable ASCII names only;
//   - nothing is created below a symlink or a file (every parent is a directory made here), and
//     files are created with O_EXCL | O_NOFOLLOW, so no member can write outside `dir`;
//   - symlinks must point inside modules/, so nothing that later reads the tree (the module
//     injector) is led to a file of the host;
//   - no setuid, setgid or sticky bits; bounded total size and member count.
// Anything else is an error naming the bundle and the member; the caller removes the directory.
import fs from "node:fs";
import path from "node:path";
import { isZeroBlock, parseHeader, parsePaxRecords, paxInteger, type PaxRecords } from "../tar/index.ts";
import { bytesToName, displayName } from "../tree/names.ts";
import { BundleError, readArchive, type ByteReader } from "./read.ts";
import { KERNEL_BUNDLE_INITRD, KERNEL_BUNDLE_MODULES, symlinkStaysInside } from "./kernel-write.ts";

const BLOCK = 512;
const MAX_EXTENSION = 64 << 10;

export interface UnpackKernelOptions {
  /** For messages: which bundle. */
  where: string;
  /** Most bytes of file data unpacked (default 8 GiB): a small download must not fill the disk. */
  maxBytes?: number;
  /** Most members (default 200,000; a distribution's full modules tree has some 6,000). */
  maxEntries?: number;
}

export interface KernelBundleContents {
  kernel: "vmlinuz" | "vmlinux";
  initrd: boolean;
  modules: boolean;
  entries: number;
  bytes: number;
}

type Kind = "file" | "dir" | "symlink";

const TYPE_NAMES: Record<string, string> = {
  "1": "a hard link",
  "3": "a character device",
  "4": "a block device",
  "6": "a fifo",
  "7": "a contiguous file",
  S: "a GNU sparse file",
  D: "a GNU dump directory",
  V: "a volume label",
  M: "a multi-volume continuation",
};

const KIND_NAMES: Record<Kind, string> = { file: "regular file", dir: "directory", symlink: "symlink" };
const KIND_OF: Record<string, Kind> = { "0": "file", "\0": "file", "5": "dir", "2": "symlink" };
const TOP_LEVEL: Record<string, Kind> = { vmlinuz: "file", vmlinux: "file", [KERNEL_BUNDLE_INITRD]: "file", [KERNEL_BUNDLE_MODULES]: "dir" };
const PRINTABLE = /^[\x20-\x5b\x5d-\x7e]+$/;

function padLen(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

const shown = (name: string) => `"${displayName(name)}"`;

/** The member's path relative to the bundle's root, refused unless plain; null for the root itself ("./"). */
function memberPath(raw: string, kind: Kind): string | null {
  if (raw.startsWith("/")) throw new BundleError(`member ${shown(raw)}: absolute names are not allowed in a kernel bundle`);
  let name = raw.startsWith("./") ? raw.slice(2) : raw;
  if (name === "" || name === ".") {
    if (kind === "dir") return null;
    throw new BundleError(`member ${shown(raw)} has no name`);
  }
  if (name.endsWith("/")) {
    if (kind !== "dir") throw new BundleError(`member ${shown(raw)}: a name ending in "/" that is not a directory`);
    name = name.slice(0, -1);
  }
  if (!PRINTABLE.test(name)) throw new BundleError(`member ${shown(raw)}: names in a kernel bundle are printable ASCII (no backslash)`);
  for (const part of name.split("/")) {
    if (part === "..") throw new BundleError(`member ${shown(raw)}: ".." is not allowed in a kernel bundle`);
    if (part === "" || part === ".") throw new BundleError(`member ${shown(raw)}: empty or "." path components are not allowed`);
  }
  return name;
}

/** Refuses a member that is not one of the bundle's names, or not of the kind that name must be. */
function checkPlace(name: string, kind: Kind): void {
  const top = name.split("/")[0]!;
  const want = TOP_LEVEL[top];
  const allowed = `a kernel bundle holds only vmlinuz or vmlinux, ${KERNEL_BUNDLE_INITRD} and ${KERNEL_BUNDLE_MODULES}/`;
  if (want === undefined) throw new BundleError(`unexpected member ${shown(name)} (${allowed})`);
  if (top === name && want !== kind) throw new BundleError(`member ${shown(name)} is a ${KIND_NAMES[kind]}, not a ${KIND_NAMES[want]}`);
  if (top !== name && top !== KERNEL_BUNDLE_MODULES) throw new BundleError(`unexpected member ${shown(name)} (${allowed})`);
}

/** Unpacks a kernel bundle's tar stream (already decompressed) into `dir`, which must exist and be empty. */
export function unpackKernelBundle(tar: AsyncIterable<Uint8Array>, dir: string, opts: UnpackKernelOptions): Promise<KernelBundleContents> {
  return readArchive(tar, opts.where, (r) => unpack(r, dir, opts));
}

async function unpack(r: ByteReader, dir: string, opts: UnpackKernelOptions): Promise<KernelBundleContents> {
  const maxBytes = opts.maxBytes ?? 8 * 1024 ** 3;
  const maxEntries = opts.maxEntries ?? 200_000;
  const made = new Map<string, Kind>();
  /** Directories named by a member of their own (not only made as a parent). */
  const explicitDirs = new Set<string>();
  const dirModes: { name: string; mode: number; mtime: number }[] = [];
  const out: KernelBundleContents = { kernel: "vmlinuz", initrd: false, modules: false, entries: 0, bytes: 0 };
  let kernel: "vmlinuz" | "vmlinux" | null = null;
  let offset = 0;
  let pax: PaxRecords | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;

  const readBody = async (size: number): Promise<Uint8Array> => {
    const body = (await r.read(size + padLen(size)))!;
    offset += size + padLen(size);
    return body.subarray(0, size);
  };
  /** Makes every missing parent of `name`; refuses a parent that is a file or symlink. */
  const parents = (name: string) => {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      const k = made.get(p);
      if (k === undefined) {
        fs.mkdirSync(path.join(dir, p), { mode: 0o700 });
        made.set(p, "dir");
      } else if (k !== "dir") {
        throw new BundleError(`member ${shown(name)} is below ${shown(p)}, which is a ${k}`);
      }
    }
  };

  for (;;) {
    const block = await r.read(BLOCK);
    if (block === null) throw new BundleError("the archive ends without its end marker (truncated)");
    const at = offset;
    offset += BLOCK;
    if (isZeroBlock(block)) break;
    const h = parseHeader(block, 0, at);
    if (h.typeflag === "x" || h.typeflag === "L" || h.typeflag === "K") {
      if (h.size > MAX_EXTENSION) throw new BundleError(`an extension header of ${h.size} bytes is too large`);
      const body = await readBody(h.size);
      if (h.typeflag === "x") pax = parsePaxRecords(body, null, pax ?? new Map());
      // GNU long names and link targets end with a NUL.
      else if (h.typeflag === "L") longName = bytesToName(body).replace(/\0+$/, "");
      else longLink = bytesToName(body).replace(/\0+$/, "");
      continue;
    }
    if (h.typeflag === "g") throw new BundleError("global PAX headers are not part of a kernel bundle");
    const paxText = (key: string) => {
      const v = pax?.get(key);
      return v === undefined ? undefined : bytesToName(v);
    };
    const rawName = paxText("path") ?? longName ?? h.name;
    const linkname = paxText("linkpath") ?? longLink ?? h.linkname;
    const sizeRecord = pax?.get("size");
    const size = sizeRecord === undefined ? h.size : paxInteger(sizeRecord, "size", rawName);
    if (pax && [...pax.keys()].some((k) => k.startsWith("GNU.sparse."))) throw new BundleError(`member ${shown(rawName)}: sparse members are not part of a kernel bundle`);
    pax = null;
    longName = null;
    longLink = null;

    const kind = KIND_OF[h.typeflag];
    if (kind === undefined) throw new BundleError(`member ${shown(rawName)} is ${TYPE_NAMES[h.typeflag] ?? `of tar type ${JSON.stringify(h.typeflag)}`}; a kernel bundle holds only directories, regular files and symlinks`);
    const name = memberPath(rawName, kind);
    if (name === null) continue;
    checkPlace(name, kind);
    if (++out.entries > maxEntries) throw new BundleError(`more than ${maxEntries} members`);
    const prior = made.get(name);
    if (prior !== undefined && !(kind === "dir" && prior === "dir" && !explicitDirs.has(name))) throw new BundleError(`member ${shown(name)} appears twice`);
    parents(name);
    const full = path.join(dir, name);
    // Permission bits only, without setuid, setgid and sticky: nothing in a kernel needs them.
    const mode = h.mode & 0o777;

    if (kind === "dir") {
      if (prior === undefined) fs.mkdirSync(full, { mode: 0o700 });
      made.set(name, "dir");
      explicitDirs.add(name);
      // Applied at the end: a read-only directory must not stop its own members being written.
      dirModes.push({ name, mode, mtime: h.mtime });
      if (size > 0) await r.stream(size + padLen(size), () => {});
      offset += size + padLen(size);
      continue;
    }
    if (kind === "symlink") {
      if (!name.startsWith(`${KERNEL_BUNDLE_MODULES}/`)) throw new BundleError(`member ${shown(name)} is a symlink`);
      if (!symlinkStaysInside(name, linkname) || !PRINTABLE.test(linkname)) throw new BundleError(`member ${shown(name)}: symlink to ${shown(linkname)} points outside ${KERNEL_BUNDLE_MODULES}/`);
      fs.symlinkSync(linkname, full);
      made.set(name, "symlink");
      continue;
    }
    out.bytes += size;
    if (out.bytes > maxBytes) throw new BundleError(`more than ${maxBytes} bytes of files`);
    if (name === "vmlinuz" || name === "vmlinux") {
      if (kernel !== null) throw new BundleError(`both vmlinuz and vmlinux (a kernel bundle holds one kernel)`);
      kernel = name;
    }
    if (name === KERNEL_BUNDLE_INITRD) out.initrd = true;
    const fd = fs.openSync(full, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    made.set(name, "file");
    try {
      let pos = 0;
      await r.stream(size, (piece) => {
        for (let done = 0; done < piece.length; ) done += fs.writeSync(fd, piece, done, piece.length - done, pos + done);
        pos += piece.length;
      });
      await r.stream(padLen(size), () => {});
      offset += size + padLen(size);
      fs.fchmodSync(fd, mode);
      fs.futimesSync(fd, h.mtime, h.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }
  if (kernel === null) throw new BundleError("no vmlinuz or vmlinux (the kernel)");
  out.kernel = kernel;
  out.modules = made.get(KERNEL_BUNDLE_MODULES) === "dir";
  // Deepest first, so making a directory read-only never blocks setting a child's mode.
  dirModes.sort((a, b) => b.name.split("/").length - a.name.split("/").length);
  for (const d of dirModes) {
    fs.chmodSync(path.join(dir, d.name), d.mode);
    fs.utimesSync(path.join(dir, d.name), d.mtime, d.mtime);
  }
  return out;
}
