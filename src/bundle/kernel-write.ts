// Writing a kernel bundle: a plain tar through zstd holding
//
//   vmlinuz | vmlinux      the kernel (a bzImage is vmlinuz; an ELF or arm64 Image is vmlinux)
//   initrd.img             optional
//   modules/<version>/...  optional: the kernel's /lib/modules/<version> tree (dirs, files, symlinks)
//
// No manifest: the kernel says its own version and architecture (src/kernel/identify.ts), and
// a catalog entry gives the bundle's sha256 and size. Members are written in a fixed order
// (modules sorted by name) with uid/gid 0, so the same files and mtime make the same bundle.
// Written under a temporary name and renamed, so `out` never holds half a bundle.
import fs from "node:fs";
import path from "node:path";
import { writeZstdArchive } from "./archive-out.ts";
import { entryHeaders, padding, type TreeEntry } from "./tar-out.ts";

export const KERNEL_BUNDLE_INITRD = "initrd.img";
export const KERNEL_BUNDLE_MODULES = "modules";

export interface WriteKernelBundleOptions {
  kernel: string;
  /** The kernel's member name (kernelFileName in src/kernel). */
  kernelName: "vmlinuz" | "vmlinux";
  initrd?: string;
  /** A lib/modules/<version> directory, bundled as modules/<version>/. */
  modules?: { dir: string; version: string };
  out: string;
  /** zstd level (default 19: bundles are made once and pulled many times). */
  level?: number;
  workers?: number;
  /** Every member's mtime (seconds); default: each file's own. */
  mtime?: number;
  /** Told about each symlink left out because it points outside the modules tree. */
  skipped?: (member: string, target: string) => void;
}

export interface KernelBundleWritten {
  path: string;
  /** sha256 (hex) of the bundle file: what a catalog entry lists. */
  sha256: string;
  bytes: number;
}

const CHUNK = 1 << 20;
/** Names a bundle may carry: printable ASCII without backslashes (what a modules tree holds). */
const PLAIN_NAME = /^[\x21-\x5b\x5d-\x7e][\x20-\x5b\x5d-\x7e]*$/;

/** True when `target`, relative to the member `name`, stays inside `modules/` (lexically). */
export function symlinkStaysInside(name: string, target: string, root = KERNEL_BUNDLE_MODULES): boolean {
  if (target === "" || target.startsWith("/")) return false;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
  return resolved === root || resolved.startsWith(`${root}/`);
}

export function writeKernelBundle(opts: WriteKernelBundleOptions): KernelBundleWritten {
  // Set by writeZstdArchive's body before any member is written.
  let z: { write(bytes: Uint8Array): void } = { write: () => {} };
  const buf = new Uint8Array(CHUNK);
  const mtimeOf = (st: fs.Stats) => opts.mtime ?? Math.floor(st.mtimeMs / 1000);
  const fileMember = (src: string, name: string, st: fs.Stats) => {
    for (const h of entryHeaders({ name, type: "0", mode: st.mode, size: st.size, mtime: mtimeOf(st) })) z.write(h);
    const inFd = fs.openSync(src, "r");
    try {
      let pos = 0;
      for (; pos < st.size; ) {
        const n = fs.readSync(inFd, buf, 0, Math.min(CHUNK, st.size - pos), pos);
        if (n <= 0) break;
        z.write(buf.subarray(0, n));
        pos += n;
      }
      // The header promised st.size bytes: a file that shrank meanwhile would shift every member after it.
      if (pos !== st.size) throw new Error(`${src}: changed size while being bundled`);
    } finally {
      fs.closeSync(inFd);
    }
    z.write(padding(st.size));
  };
  const treeMember = (e: TreeEntry) => {
    for (const h of entryHeaders(e)) z.write(h);
  };
  const walk = (dir: string, name: string) => {
    for (const child of fs.readdirSync(dir).sort()) {
      const src = path.join(dir, child);
      const member = `${name}/${child}`;
      if (!PLAIN_NAME.test(child)) throw new Error(`${src}: the name is not printable ASCII; a kernel bundle does not carry it`);
      const st = fs.lstatSync(src);
      if (st.isDirectory()) {
        treeMember({ name: member, type: "5", mode: st.mode, size: 0, mtime: mtimeOf(st) });
        walk(src, member);
      } else if (st.isFile()) {
        fileMember(src, member, st);
      } else if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(src);
        // A link out of the tree (build -> /usr/src/linux-headers-...) means nothing in a
        // guest, and bundle readers refuse them: leave it out and say so.
        if (!symlinkStaysInside(member, target) || !PLAIN_NAME.test(target)) {
          opts.skipped?.(member, target);
          continue;
        }
        treeMember({ name: member, type: "2", mode: 0o777, size: 0, mtime: mtimeOf(st), linkname: target });
      } else {
        throw new Error(`${src}: not a directory, regular file or symlink; a kernel bundle does not carry it`);
      }
    }
  };
  const written = writeZstdArchive(opts.out, opts, (write) => {
    z = { write };
    fileMember(opts.kernel, opts.kernelName, fs.statSync(opts.kernel));
    if (opts.initrd) fileMember(opts.initrd, KERNEL_BUNDLE_INITRD, fs.statSync(opts.initrd));
    if (opts.modules) {
      const st = fs.statSync(opts.modules.dir);
      if (!PLAIN_NAME.test(opts.modules.version) || opts.modules.version.includes("/")) throw new Error(`kernel version "${opts.modules.version}" cannot name a directory`);
      treeMember({ name: KERNEL_BUNDLE_MODULES, type: "5", mode: 0o755, size: 0, mtime: mtimeOf(st) });
      const top = `${KERNEL_BUNDLE_MODULES}/${opts.modules.version}`;
      treeMember({ name: top, type: "5", mode: st.mode, size: 0, mtime: mtimeOf(st) });
      walk(opts.modules.dir, top);
    }
  });
  return { path: opts.out, ...written };
}
