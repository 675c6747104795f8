// Writing an image bundle: manifest.json, then rootfs.ext4 (and work-seed.ext4) as sparse tar
// members, through zstd, into `out`. Streamed: memory holds a 1 MiB read buffer and libzstd's
// window, whatever the image's size. Written under a temporary name and renamed, so `out`
// never holds half a bundle.
import fs from "node:fs";
import { dataRanges } from "../io/holes.ts";
import type { BundleManifest } from "./manifest.ts";
import { writeZstdArchive } from "./archive-out.ts";
import { memberHeaders, padding, sparseHeaders, sparseMap } from "./tar-out.ts";

export const BUNDLE_ROOTFS = "rootfs.ext4";
export const BUNDLE_WORK_SEED = "work-seed.ext4";
export const BUNDLE_MANIFEST = "manifest.json";

export interface WriteBundleOptions {
  rootfs: string;
  workSeed?: string;
  /** Everything but the checksums and size, which are computed here. */
  manifest: Omit<BundleManifest, "rootfs_sha256" | "size_bytes" | "work_seed_sha256">;
  out: string;
  /** zstd level (default 19: bundles are made once and pulled many times). */
  level?: number;
  workers?: number;
}

export interface BundleWritten {
  path: string;
  /** sha256 (hex) of the bundle file: what a catalog entry lists. */
  sha256: string;
  bytes: number;
  manifest: BundleManifest;
}

const CHUNK = 1 << 20;
const ZEROS = new Uint8Array(CHUNK);

/** sha256 of a file as a plain byte stream, reading only its data (holes hash as zeros). */
export function sparseFileSha256(file: string): string {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const h = new Bun.CryptoHasher("sha256");
    const buf = new Uint8Array(CHUNK);
    let at = 0;
    const zeros = (n: number) => {
      for (; n > 0; n -= Math.min(n, CHUNK)) h.update(ZEROS.subarray(0, Math.min(n, CHUNK)));
    };
    for (const [s, e] of dataRanges(fd, size)) {
      zeros(s - at);
      for (let p = s; p < e; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, e - p), p);
        if (n <= 0) throw new Error(`${file}: short read at ${p}`);
        h.update(buf.subarray(0, n));
        p += n;
      }
      at = e;
    }
    zeros(size - at);
    return h.digest("hex");
  } finally {
    fs.closeSync(fd);
  }
}

export function writeBundle(opts: WriteBundleOptions): BundleWritten {
  const manifest: BundleManifest = {
    ...opts.manifest,
    rootfs_sha256: sparseFileSha256(opts.rootfs),
    size_bytes: fs.statSync(opts.rootfs).size,
    ...(opts.workSeed ? { work_seed_sha256: sparseFileSha256(opts.workSeed) } : {}),
  };
  const mtime = Math.floor(Date.parse(manifest.created) / 1000) || 0;
  const json = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  const written = writeZstdArchive(opts.out, opts, (write) => {
    for (const h of memberHeaders(BUNDLE_MANIFEST, json.length, mtime)) write(h);
    write(json);
    write(padding(json.length));
    writeSparseMember(write, opts.rootfs, BUNDLE_ROOTFS, mtime);
    if (opts.workSeed) writeSparseMember(write, opts.workSeed, BUNDLE_WORK_SEED, mtime);
  });
  return { path: opts.out, ...written, manifest };
}

function writeSparseMember(write: (bytes: Uint8Array) => void, file: string, name: string, mtime: number): void {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const ranges = dataRanges(fd, size);
    const map = sparseMap(ranges, size);
    const dataBytes = ranges.reduce((n, [s, e]) => n + (e - s), 0);
    for (const h of sparseHeaders(name, size, map.length + dataBytes, mtime)) write(h);
    write(map);
    const buf = new Uint8Array(CHUNK);
    for (const [s, e] of ranges) {
      for (let p = s; p < e; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, e - p), p);
        if (n <= 0) throw new Error(`${file}: short read at ${p}`);
        write(buf.subarray(0, n));
        p += n;
      }
    }
    write(padding(map.length + dataBytes));
  } finally {
    fs.closeSync(fd);
  }
}
