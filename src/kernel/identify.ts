// What a kernel file is, read from its own bytes: the format a VMM loads, the architecture and
// the release (`uname -r`). Registering or pulling a kernel records these, so the version never
// comes from a file name someone chose.
//
//   bzImage  x86 boot protocol (Documentation/arch/x86/boot.rst): boot_flag 0xAA55 at 0x1FE,
//            "HdrS" at 0x202, protocol version at 0x206. kernel_version (u16 at 0x20E, 2.00+)
//            points, less 0x200, at a NUL-terminated string "6.1.0-28-cloud-amd64 (...) #1 ...",
//            inside the setup sectors. xloadflags (u16 at 0x236, 2.12+) bit 0 says 64-bit.
//   vmlinux  ELF; e_machine names the architecture. The version is in linux_banner.
//   Image    arm64's uncompressed kernel: "ARM\x64" at 0x38. The version is in linux_banner.
//
// linux_banner ("Linux version 6.1.0-28-cloud-amd64 (...) ...") sits uncompressed in vmlinux and
// Image; a bzImage compresses it, which is why the boot protocol's string is read there instead.
import fs from "node:fs";
import path from "node:path";

export type KernelFormat = "bzImage" | "vmlinux" | "Image";

export interface KernelIdentity {
  format: KernelFormat;
  /** Debian/OCI architecture names: "amd64", "386", "arm64", "riscv64". */
  arch: string;
  /** The release as `uname -r` prints it ("6.1.0-28-cloud-amd64"), or null when the file does not say. */
  version: string | null;
  /** The whole version string the file carries (the bzImage header's, or linux_banner's). */
  versionString: string | null;
}

export class KernelFileError extends Error {
  override name = "KernelFileError";
}

const HEAD = 64 << 10;
const SCAN_CHUNK = 4 << 20;
const BANNER = "Linux version ";
/** linux_banner is one line of a few hundred bytes at most. */
const MAX_BANNER = 512;
/** A release starts with major.minor; anything else after "Linux version " is a format string or prose. */
const RELEASE = /^\d+\.\d+[^\s]*/;

const ELF_MACHINES: Record<number, string> = { 3: "386", 62: "amd64", 183: "arm64", 243: "riscv64" };

function u16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function cString(b: Uint8Array, at: number, max: number): string | null {
  const end = Math.min(b.length, at + max);
  let i = at;
  while (i < end && b[i] !== 0) {
    // Printable ASCII only: a header pointing at random bytes is not a version string.
    if (b[i]! < 0x20 || b[i]! > 0x7e) return null;
    i++;
  }
  if (i === end || i === at) return null;
  return new TextDecoder("latin1").decode(b.subarray(at, i));
}

function releaseOf(versionString: string | null): string | null {
  return versionString ? (RELEASE.exec(versionString)?.[0] ?? null) : null;
}

/** The bzImage setup header's fields we use, or null when `head` is not a bzImage. */
export function parseBzImageHeader(head: Uint8Array): { protocol: number; versionString: string | null; is64: boolean | null } | null {
  if (head.length < 0x240 || u16(head, 0x1fe) !== 0xaa55) return null;
  if (new TextDecoder("latin1").decode(head.subarray(0x202, 0x206)) !== "HdrS") return null;
  const protocol = u16(head, 0x206);
  // setup_sects 0 means 4, for compatibility with kernels older than the field.
  const setupSects = head[0x1f1] || 4;
  const setupEnd = (setupSects + 1) * 512;
  let versionString: string | null = null;
  const pointer = protocol >= 0x200 ? u16(head, 0x20e) : 0;
  if (pointer !== 0 && pointer + 0x200 < Math.min(setupEnd, head.length)) versionString = cString(head, pointer + 0x200, 256);
  const is64 = protocol >= 0x20c ? (u16(head, 0x236) & 1) === 1 : null;
  return { protocol, versionString, is64 };
}

/** What follows "Linux version " in the file's first linux_banner ("<release> (...) #1 ..."), or null. */
export function findBanner(file: string): string | null {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(SCAN_CHUNK);
    // The tail of each read is carried into the next, so a banner cut by a chunk boundary is
    // still read whole.
    let carry = "";
    for (let pos = 0; pos < size; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(SCAN_CHUNK, size - pos), pos);
      if (n <= 0) break;
      pos += n;
      const text = carry + buf.toString("latin1", 0, n);
      const more = pos < size;
      carry = text.slice(-(BANNER.length + MAX_BANNER));
      for (let at = text.indexOf(BANNER); at >= 0; at = text.indexOf(BANNER, at + 1)) {
        const end = text.slice(at, at + MAX_BANNER + 1).search(/[\n\0]/);
        if (end < 0) {
          // No end in sight: cut by this read (carry it), or too long to be the banner.
          if (more && text.length - at <= MAX_BANNER) {
            carry = text.slice(at);
            break;
          }
          continue;
        }
        const line = text.slice(at + BANNER.length, at + end);
        if (/^[\x20-\x7e]*$/.test(line) && RELEASE.test(line)) return line;
      }
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Identifies a kernel file; throws KernelFileError (naming the file) when it is none banger can boot. */
export function identifyKernel(file: string): KernelIdentity {
  let head: Uint8Array;
  try {
    const fd = fs.openSync(file, "r");
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new KernelFileError(`${file}: not a regular file`);
      const buf = new Uint8Array(Math.min(HEAD, st.size));
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      head = buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if (err instanceof KernelFileError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new KernelFileError(`${file}: ${e.code === "ENOENT" ? "no such file" : e.message}`, { cause: err });
  }

  const bz = parseBzImageHeader(head);
  if (bz) {
    // Before 2.12 the header does not say; such kernels predate 64-bit bzImage loading (3.8).
    return { format: "bzImage", arch: bz.is64 === false || bz.is64 === null ? "386" : "amd64", version: releaseOf(bz.versionString), versionString: bz.versionString };
  }
  if (head.length >= 20 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    // EI_DATA 1 is little-endian: every architecture banger runs on.
    const machine = head[5] === 1 ? u16(head, 18) : -1;
    const arch = ELF_MACHINES[machine];
    if (!arch) throw new KernelFileError(`${file}: an ELF file for machine ${machine}, not a kernel banger knows (x86, x86-64, arm64, riscv64)`);
    const banner = findBanner(file);
    return { format: "vmlinux", arch, version: releaseOf(banner), versionString: banner };
  }
  if (head.length >= 0x40 && new TextDecoder("latin1").decode(head.subarray(0x38, 0x3c)) === "ARM\x64") {
    const banner = findBanner(file);
    return { format: "Image", arch: "arm64", version: releaseOf(banner), versionString: banner };
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw new KernelFileError(`${file}: a gzip-compressed file (arm64 distributions ship vmlinuz like this); give the uncompressed kernel (zcat it first)`);
  }
  throw new KernelFileError(`${file}: not a kernel image banger knows (an x86 bzImage, an ELF vmlinux, or an arm64 Image)`);
}

/** The name a kernel file is stored and bundled under: vmlinuz for a bzImage, vmlinux for the uncompressed kinds. */
export function kernelFileName(format: KernelFormat): "vmlinuz" | "vmlinux" {
  return format === "bzImage" ? "vmlinuz" : "vmlinux";
}

/** True when a directory name reads as a kernel release (6.1.0-28-cloud-amd64), not any name. */
export function looksLikeRelease(name: string): boolean {
  return /^\d+\.\d+[A-Za-z0-9._+~-]*$/.test(name);
}

/**
 * The kernel's release: what the kernel file says, checked against the modules directory's name
 * (lib/modules/<version>) where that reads as a release; either alone is enough.
 */
export function kernelVersion(identity: KernelIdentity, kernelFile: string, modulesRoot: string | null): string {
  const fromModules = modulesRoot && looksLikeRelease(path.basename(modulesRoot)) ? path.basename(modulesRoot) : null;
  if (identity.version && fromModules && identity.version !== fromModules) {
    throw new KernelFileError(`${kernelFile} is kernel ${identity.version}, but the modules in ${modulesRoot} are for ${fromModules}`);
  }
  const version = identity.version ?? fromModules;
  if (!version) throw new KernelFileError(`${kernelFile}: the file does not say its version; give its modules (lib/modules/<version>) to tell it`);
  return version;
}
