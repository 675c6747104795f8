// Benchmark inputs: the real Debian rootfs fixture and generated tars, cached outside the repo
// ($BANGER_FIXTURE_CACHE or /var/tmp/banger-fixtures, the place the e2e tests use), plus the
// 100 GiB mostly-zero stream, which is generated on the fly and never stored.
import { existsSync, mkdirSync, renameSync, rmSync, statfsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { TarFileWriter } from "./tar-writer.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..");
export const FIXTURE_CACHE = process.env.BANGER_FIXTURE_CACHE || "/var/tmp/banger-fixtures";
export const BENCH_CACHE = join(FIXTURE_CACHE, "bench");
const DEBIAN_SCRIPT = resolve(REPO_ROOT, "../shared/fixtures/debian-rootfs.sh");

function log(msg: string): void {
  console.error(`[bench] ${msg}`);
}

export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Builds `path` with `make(tmp)` unless it exists; tmp is renamed into place only on success. */
async function cached(path: string, make: (tmp: string) => void | Promise<void>): Promise<string> {
  if (existsSync(path)) return path;
  mkdirSync(resolve(path, ".."), { recursive: true });
  // mmdebstrap picks the output format from the extension: keep ".tar" last.
  const tmp = path.replace(/\.tar$/, "") + `.tmp${process.pid}.tar`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await make(tmp);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return path;
}

/** The real Debian bookworm rootfs tar (about 250 MB, ~12k entries), built once by mmdebstrap. */
export async function debianRootfs(): Promise<string> {
  return cached(join(FIXTURE_CACHE, "debian-rootfs.tar"), async (tmp) => {
    if (!existsSync(DEBIAN_SCRIPT)) throw new Error(`fixture script not found: ${DEBIAN_SCRIPT}`);
    log(`building Debian rootfs fixture with ${DEBIAN_SCRIPT} (about a minute)`);
    const p = Bun.spawn(["bash", DEBIAN_SCRIPT, tmp], { stdout: "inherit", stderr: "inherit" });
    const code = await p.exited;
    if (code !== 0) throw new Error(`${DEBIAN_SCRIPT} ${tmp} exited with ${code}`);
    if (!statSync(tmp).isFile()) throw new Error(`${DEBIAN_SCRIPT} did not produce a tar file at ${tmp}`);
  });
}

/** Deterministic small-file content: `len` bytes naming the file. */
function smallContent(i: number, len: number): Uint8Array {
  const line = `file ${i} of the banger benchmark\n`;
  return new TextEncoder().encode(line.repeat(Math.ceil(len / line.length)).slice(0, len));
}

/**
 * `files` small regular files spread over `dirs` directories (d0000/f0000000), sizes 1..1024 bytes,
 * owned by uid/gid 1000, mode 0644 (dirs 0755).
 */
export async function manyFilesTar(files: number, dirs: number): Promise<string> {
  const path = join(BENCH_CACHE, `files-${files}-in-${dirs}-dirs-v1.tar`);
  return cached(path, (tmp) => {
    log(`generating ${files} files in ${dirs} directories → ${path}`);
    const w = new TarFileWriter(tmp);
    const dw = String(dirs - 1).length;
    const fw = String(files - 1).length;
    const dirName = (d: number) => (dirs === 1 ? "data" : `d${String(d).padStart(dw, "0")}`);
    const perDir = Math.ceil(files / dirs);
    let i = 0;
    for (let d = 0; d < dirs && i < files; d++) {
      w.add({ name: `${dirName(d)}/`, type: "dir", mode: 0o755, uid: 1000, gid: 1000 });
      for (let k = 0; k < perDir && i < files; k++, i++) {
        const len = 1 + ((i * 7919) % 1024);
        w.add({ name: `${dirName(d)}/f${String(i).padStart(fw, "0")}`, type: "file", mode: 0o644, uid: 1000, gid: 1000 }, smallContent(i, len));
      }
    }
    w.close();
  });
}

/** One regular file of `size` bytes of non-zero (pseudo-random) data. */
export async function bigFileTar(size: number): Promise<string> {
  const path = join(BENCH_CACHE, `big-file-${size}-v1.tar`);
  if (!existsSync(path)) {
    mkdirSync(BENCH_CACHE, { recursive: true });
    const free = freeBytes(BENCH_CACHE);
    if (free < size * 1.1 + (2 << 30)) {
      throw new Error(`not enough disk for the ${size}-byte file tar in ${BENCH_CACHE}: ${(free / 2 ** 30).toFixed(1)} GiB free`);
    }
  }
  return cached(path, (tmp) => {
    log(`generating one ${(size / 2 ** 30).toFixed(2)} GiB non-zero file → ${path}`);
    const w = new TarFileWriter(tmp);
    const chunk = new Uint8Array(1 << 20);
    crypto.getRandomValues(chunk.subarray(0, 65536));
    for (let o = 65536; o < chunk.length; o += 65536) chunk.copyWithin(o, 0, 65536);
    function* chunks(): Generator<Uint8Array> {
      const view = new DataView(chunk.buffer);
      for (let off = 0; off < size; off += chunk.length) {
        // Stamp each 4 KiB block with its offset so no two blocks are equal and none is zero.
        for (let b = 0; b < chunk.length; b += 4096) view.setFloat64(b, off + b + 1);
        yield off + chunk.length <= size ? chunk : chunk.subarray(0, size - off);
      }
    }
    w.addStreamed({ name: "big-file.bin", type: "file", mode: 0o644, uid: 1000, gid: 1000 }, size, chunks());
    w.close();
  });
}

/** Shell words that write the mostly-zero tar stream to stdout (64 KiB writes, GB/s). */
export function zeroStreamCommand(size: number, nonZeroBlocks: number): string[] {
  return [process.execPath, join(REPO_ROOT, "bench/zero-stream.ts"), String(size), String(nonZeroBlocks)];
}
