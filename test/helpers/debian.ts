// The Debian bookworm rootfs fixture (~250 MB tar, ~12k entries), built once with
// shared/fixtures/debian-rootfs.sh (mmdebstrap; needs network and root) into a cache dir that
// outlives test runs: $BANGER_FIXTURE_CACHE, else /var/tmp/banger-fixtures/.
// Same file name as bench/inputs.ts, so benchmarks and tests share one build.
// Concurrent builders (parallel test processes, two engineers) are serialized by a lock
// directory; the tar appears under its final name only complete (build to temp, rename).
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "../..");

/** The fixture script: ../shared/fixtures/debian-rootfs.sh beside the repo (CI layout), else /work/shared. */
export function debianScript(): string {
  const candidates = [resolve(REPO_ROOT, "../shared/fixtures/debian-rootfs.sh"), "/work/shared/fixtures/debian-rootfs.sh"];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`debian-rootfs.sh not found (looked in ${candidates.join(", ")})`);
  return found;
}

export function fixtureCacheDir(): string {
  return process.env.BANGER_FIXTURE_CACHE ?? "/var/tmp/banger-fixtures";
}

const LOCK_STALE_MS = 20 * 60_000;

/** Path of the cached Debian rootfs tar, building it first if needed. */
export function debianRootfsTar(): Promise<string> {
  return cachedTar("debian-rootfs", (tmp) => ["bash", debianScript(), tmp]);
}

/**
 * A Debian bookworm minbase with openssh-server and iproute2 and no init system at all (no
 * systemd): the kind of image that boots through banger-init. ~190 MB, ~25 s to build.
 */
export function debianNoInitTar(): Promise<string> {
  return cachedTar("debian-noinit", (tmp) => ["mmdebstrap", "--quiet", "--variant=minbase", "--include=openssh-server,iproute2", "bookworm", tmp]);
}

/** `<cache>/<name>.tar`, built by `argv(tmp)` once (serialized by a lock dir across processes). */
async function cachedTar(name: string, argv: (tmp: string) => string[]): Promise<string> {
  const dir = fixtureCacheDir();
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${name}.tar`);
  const lock = join(dir, `${name}.lock`);
  for (;;) {
    if (existsSync(out)) return out;
    let owner = false;
    try {
      mkdirSync(lock);
      owner = true;
    } catch {
      // Someone else builds it: wait, unless their lock is stale (a killed builder).
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // lock vanished: look again
      }
      if (age > LOCK_STALE_MS) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      await Bun.sleep(2000);
      continue;
    }
    if (owner) {
      try {
        writeFileSync(join(lock, "pid"), String(process.pid));
        const tmp = join(dir, `.${name}.${process.pid}.tar`);
        const p = Bun.spawn(argv(tmp), { stdout: "pipe", stderr: "pipe" });
        const code = await p.exited;
        if (code !== 0) {
          rmSync(tmp, { force: true });
          const err = await new Response(p.stderr).text();
          const outText = await new Response(p.stdout).text();
          throw new Error(`building ${name}.tar failed (exit ${code}):\n${outText}${err}`);
        }
        renameSync(tmp, out);
        return out;
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
    }
  }
}

/** Who holds the build lock (for messages), or null. */
export function debianLockHolder(): string | null {
  try {
    return readFileSync(join(fixtureCacheDir(), "debian-rootfs.lock", "pid"), "utf8");
  } catch {
    return null;
  }
}
