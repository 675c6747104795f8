// Shared by the e2e tests: run the real CLI (`bun src/cli/main.ts internal make-ext4 ...`)
// as a child process from the repo root, and the checks every produced image must pass.
import { expect } from "bun:test";
import { resolve } from "node:path";
import { e2fsckClean } from "../helpers/oracles.ts";
import { compareSnapshots, mountImage, snapshotTree, type Snapshot, type TarSource } from "../helpers/kernel-compare.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");

/** Tools the e2e tests use as oracles (all from packages .ci/run installs). */
export const E2E_TOOLS = ["e2fsck", "debugfs", "dumpe2fs", "mkfs.ext4", "mount", "umount", "losetup", "getfattr", "setfattr", "setfacl", "tar"];

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `banger internal make-ext4 <args>`; with `stdinFrom`, the tar is the stdout of that
 * command and `--rootfs-tar -` is expected among args. `env` replaces the environment.
 */
export async function makeExt4(
  args: string[],
  opts: { stdinFrom?: TarSource; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  const t0 = performance.now();
  let producer: ReturnType<typeof Bun.spawn> | undefined;
  let stdin: "ignore" | ReadableStream<Uint8Array> | ReturnType<typeof Bun.file> = "ignore";
  if (opts.stdinFrom !== undefined) {
    if (typeof opts.stdinFrom === "string") stdin = Bun.file(opts.stdinFrom);
    else {
      producer = Bun.spawn(opts.stdinFrom.command, { stdout: "pipe", stderr: "pipe" });
      stdin = producer.stdout as ReadableStream<Uint8Array>;
    }
  }
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", "internal", "make-ext4", ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: opts.env ?? process.env,
    stdin,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (producer) {
    // If make-ext4 stopped reading early the producer may die of SIGPIPE: that is not our concern here.
    producer.kill();
    await producer.exited;
  }
  return { exitCode, stdout, stderr, ms: performance.now() - t0 };
}

/** make-ext4 must succeed; otherwise fail with its output. */
export async function makeExt4Ok(args: string[], opts: Parameters<typeof makeExt4>[1] = {}): Promise<CliResult> {
  const r = await makeExt4(args, opts);
  if (r.exitCode !== 0) {
    throw new Error(`banger internal make-ext4 ${args.join(" ")} exited ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r;
}

/** Mounts the image read-only and returns its snapshot. */
export function snapshotImage(image: string): Promise<Snapshot> {
  return mountImage(image, (mnt) => snapshotTree(mnt));
}

/** e2fsck clean, then mounted tree equals the reference (lost+found aside). */
export async function expectImageMatches(image: string, reference: Snapshot): Promise<void> {
  e2fsckClean(image);
  const ours = await snapshotImage(image);
  expect(ours.get("/lost+found")).toMatchObject({ type: "dir", mode: 0o700, uid: 0, gid: 0 });
  const diffs = compareSnapshots(ours, reference, { ignore: ["lost+found"], max: 200 });
  expect(diffs).toEqual([]);
}

/** Lazily computed, shared value (a fixture built on first use, not at import). */
export function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}
