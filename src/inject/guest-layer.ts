// banger's guest files as one more layer, merged on top of the image's own: the merge's rules
// then make them replace (never duplicate) a file the image has at the same path, imply missing
// parents, and resolve a parent that is a symlink inside the image (e.g. /usr/local -> /opt/x).
// The layer's bytes live in memory (a few KiB of scripts and units): one ByteSource of its own.
import type { TarEntry } from "../tar/index.ts";
import type { ByteSource, FsNode, Timestamp } from "../tree/index.ts";
import type { GuestAssets, InitKind } from "./assets-types.ts";
import { FIRST_BOOT_MARKER } from "./assets-types.ts";

export interface GuestLayerOptions {
  init: InitKind;
  /** Lines for /root/.ssh/authorized_keys (banger's public key); "" writes none (a bundle made to share). */
  authorizedKeys: string;
  /** Times of every injected entry (the pull's timestamp: reproducible images). */
  time: Timestamp;
  /** More files, e.g. an attached kernel's modules (kernel-modules.ts); root-owned, 0644. */
  extraFiles?: { path: string; bytes: Uint8Array }[];
}

export interface GuestLayer {
  /** Members in the order the merge must apply them (directories before their contents). */
  entries: TarEntry[];
  /** The bytes the file entries point into. */
  source: ByteSource;
  /** Guest paths written, for the image record. */
  injected: string[];
}

/** The whole content in memory, read at offsets like a spool. */
export class MemoryByteSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  readInto(into: Uint8Array, offset: number): void {
    if (offset < 0 || offset + into.length > this.bytes.length) throw new Error(`guest files: read of ${into.length} bytes at ${offset} is past their end (${this.bytes.length})`);
    into.set(this.bytes.subarray(offset, offset + into.length));
  }
  regularFileFd(): number | null {
    return null;
  }
  close(): void {}
}

/**
 * The guest layer for an image whose merged tree is `root` (read, not changed: /root is made
 * 0700 only when the image has none).
 */
export function guestLayer(root: FsNode, assets: GuestAssets, opts: GuestLayerOptions): GuestLayer {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const entries: TarEntry[] = [];
  const base = (path: string, type: TarEntry["type"], mode: number): TarEntry => ({
    type,
    path,
    linkname: "",
    mode,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: opts.time,
    atime: opts.time,
    ctime: opts.time,
    major: 0,
    minor: 0,
    xattrs: new Map(),
    headerOffset: offset,
    dataOffset: offset,
  });
  const dir = (path: string, mode: number) => entries.push(base(path, "dir", mode));
  const file = (path: string, mode: number, content: Uint8Array) => {
    const e = base(path, "file", mode);
    e.size = content.length;
    entries.push(e);
    chunks.push(content);
    offset += content.length;
  };
  const text = new TextEncoder();

  if (!root.children?.has("root")) dir("root", 0o700);
  if (opts.authorizedKeys !== "") {
    // sshd refuses keys in a group- or world-writable .ssh: the modes are set, whatever the image had.
    dir("root/.ssh", 0o700);
    file("root/.ssh/authorized_keys", 0o600, text.encode(opts.authorizedKeys.endsWith("\n") ? opts.authorizedKeys : `${opts.authorizedKeys}\n`));
  }
  file(FIRST_BOOT_MARKER.slice(1), 0o644, new Uint8Array(0));
  // banger-init logs to /dev/console before it mounts devtmpfs over /dev: the node must exist.
  if (opts.init === "banger-init" && !root.children?.get("dev")?.children?.has("console")) {
    const c = base("dev/console", "chardev", 0o600);
    c.major = 5;
    c.minor = 1;
    entries.push(c);
  }
  for (const f of assets.files) {
    if (!f.for.includes(opts.init)) continue;
    file(f.path.slice(1), f.mode, text.encode(f.text));
  }
  for (const f of opts.extraFiles ?? []) file(f.path.replace(/^\/+/, ""), 0o644, f.bytes);
  for (const l of assets.links) {
    if (!l.for.includes(opts.init)) continue;
    const e = base(l.path.slice(1), "symlink", 0o777);
    e.linkname = l.target;
    entries.push(e);
  }
  const bytes = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  const injected = entries.filter((e) => e.type !== "dir").map((e) => `/${e.path}`);
  return { entries, source: new MemoryByteSource(bytes), injected };
}
