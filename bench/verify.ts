// Checks on banger's output, run after timing (never timed): e2fsck -fn, and for the mostly-zero
// case that the image holds only the non-zero blocks.
import { statSync } from "node:fs";
import { DEBUGFS, E2FSCK } from "./baselines.ts";
import { nonZeroOffsets, ZERO_FILE_NAME } from "./zero-stream.ts";
import type { Expectations } from "./oci-fixtures.ts";

export interface FsckResult {
  ok: boolean;
  detail: string;
}

export function fsck(image: string): FsckResult {
  const r = Bun.spawnSync([E2FSCK, "-fn", image], { stdout: "pipe", stderr: "pipe" });
  const text = (r.stdout.toString() + r.stderr.toString()).trim();
  const lines = text.split("\n");
  return {
    ok: r.exitCode === 0,
    detail: r.exitCode === 0 ? (lines.at(-1) ?? "") : `exit ${r.exitCode}: ${lines.slice(0, 12).join(" / ").slice(0, 1500)}`,
  };
}

export interface ZeroCheck {
  ok: boolean;
  /** i_blocks of the file, in bytes (data + extent tree blocks). */
  fileAllocatedBytes: number;
  nonZeroBytes: number;
  imageApparentBytes: number;
  imageHostAllocatedBytes: number;
  detail: string;
}

/** debugfs's answer (stdout only: its version banner goes to stderr). */
function debugfsRequest(image: string, request: string): string {
  const r = Bun.spawnSync([DEBUGFS, "-R", request, image], { stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString();
}

/** The streamed file must own exactly its non-zero blocks (plus a few extent-tree blocks). */
export function checkZeroImage(image: string, size: number, nonZeroBlocks: number): ZeroCheck {
  const stat = debugfsRequest(image, `stat /${ZERO_FILE_NAME}`);
  const bc = /Blockcount:\s*(\d+)/.exec(stat);
  const sz = /Size:\s*(\d+)/.exec(stat);
  const fileAllocatedBytes = bc ? Number(bc[1]) * 512 : NaN;
  const nonZeroBytes = nonZeroBlocks * 4096;
  const problems: string[] = [];
  if (!bc) problems.push(`debugfs stat /${ZERO_FILE_NAME} gave no Blockcount: ${stat.slice(0, 300)}`);
  if (sz && Number(sz[1]) !== size) problems.push(`file size ${sz[1]} != ${size}`);
  // Allow the extent tree: one index/leaf block per 340 extents, plus a little.
  const slack = (Math.ceil(nonZeroBlocks / 340) + 2) * 4096;
  if (bc && (fileAllocatedBytes < nonZeroBytes || fileAllocatedBytes > nonZeroBytes + slack)) {
    problems.push(`file owns ${fileAllocatedBytes} bytes of blocks, expected ${nonZeroBytes} (+ at most ${slack} of extent tree)`);
  }
  // Each non-zero block is mapped; the block after it (zero, unless it is another mark) is a hole.
  const marks = nonZeroOffsets(size, nonZeroBlocks).map((o) => o / 4096);
  const markSet = new Set(marks);
  for (const lblk of marks.slice(0, 8)) {
    const phys = Number(/(\d+)\s*$/.exec(debugfsRequest(image, `bmap /${ZERO_FILE_NAME} ${lblk}`).trim())?.[1] ?? NaN);
    if (!(phys > 0)) problems.push(`logical block ${lblk} (non-zero data) is not mapped`);
    if (!markSet.has(lblk + 1)) {
      const hole = Number(/(\d+)\s*$/.exec(debugfsRequest(image, `bmap /${ZERO_FILE_NAME} ${lblk + 1}`).trim())?.[1] ?? NaN);
      if (hole !== 0) problems.push(`logical block ${lblk + 1} (zeros) is mapped to ${hole}, expected a hole`);
    }
  }
  const st = statSync(image);
  return {
    ok: problems.length === 0,
    fileAllocatedBytes,
    nonZeroBytes,
    imageApparentBytes: st.size,
    imageHostAllocatedBytes: st.blocks * 512,
    detail: problems.length ? problems.join("; ") : `file owns ${fileAllocatedBytes} bytes of blocks for ${nonZeroBytes} bytes of non-zero data; zero ranges are holes`,
  };
}

/**
 * The pull cases' merged-tree expectations (bench/oci-fixtures.ts) checked in banger's image
 * through debugfs: a sample of the deleted paths is absent, a sample of the replaced and
 * re-added files has the expected content, the replacing symlinks point where they should.
 */
export function checkExpectations(image: string, x: Expectations, sample = 25): { ok: boolean; detail: string } {
  const pick = <T>(xs: T[]) => (xs.length <= sample ? xs : xs.filter((_, i) => i % Math.ceil(xs.length / sample) === 0));
  const bad: string[] = [];
  const stat = (p: string) => Bun.spawnSync([DEBUGFS, "-R", `stat "/${p}"`, image], { stdout: "pipe", stderr: "pipe" });
  const absent = pick(x.absent);
  for (const p of absent) {
    const r = stat(p);
    if (/Inode:\s*\d+/.test(r.stdout.toString())) bad.push(`/${p} exists (should be deleted)`);
  }
  const content = pick(x.content);
  for (const c of content) {
    const r = Bun.spawnSync([DEBUGFS, "-R", `cat "/${c.path}"`, image], { stdout: "pipe", stderr: "pipe" });
    const got = new Bun.CryptoHasher("sha256").update(r.stdout).digest("hex");
    if (got !== c.sha256) bad.push(`/${c.path}: wrong content`);
  }
  for (const l of x.symlinks) {
    const out = stat(l.path).stdout.toString();
    const target = /Fast link dest: "(.*)"/.exec(out)?.[1];
    if (target !== l.target) bad.push(`/${l.path}: not a symlink to ${l.target}`);
  }
  const what = `${absent.length} of ${x.absent.length} deleted paths, ${content.length} of ${x.content.length} replaced/re-added files, ${x.symlinks.length} replacing symlinks`;
  return { ok: bad.length === 0, detail: bad.length ? `${bad.length} problems in ${what}: ${bad.slice(0, 6).join("; ")}` : `checked ${what}` };
}
