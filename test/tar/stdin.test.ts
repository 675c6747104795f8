// Standard input ("-"): a child bun process reads a piped tar, spools it next to the output
// path with zero blocks left as holes, and leaves no spool file behind (after cleanup or errors).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { openSync, readdirSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadRootfsTar } from "../../src/tar/index.ts";
import { walkTree } from "../../src/tree/nodes.ts";
import { header, padding, TarBuilder } from "../helpers/tarwriter.ts";
import { BUN, readNodeData, removeDir, tempDir } from "./util.ts";

const CHILD = join(import.meta.dir, "fixtures", "stdin-child.ts");

let work = "";
beforeAll(() => {
  work = tempDir("stdin");
});
afterAll(() => removeDir(work));

interface ChildResult {
  ok: boolean;
  message?: string;
  entries?: Array<{ path: string; kind: string; size: number; sha256?: string; runs?: number[] | null; offset?: number }>;
  identity?: string;
  spool?: Array<{ link: string; blocks512: number; size: number }>;
  visibleBefore?: string[];
  visibleAfter?: string[];
}

/** Runs the child with `feed` writing its stdin through a pipe. */
async function runChild(feed: (sink: { write(b: Uint8Array): unknown; flush(): unknown }) => Promise<void> | void, stdinFd?: number): Promise<ChildResult> {
  const proc = Bun.spawn([BUN, CHILD, join(work, "out.img")], { stdin: stdinFd ?? "pipe", stdout: "pipe", stderr: "pipe" });
  if (stdinFd === undefined) {
    const sink = proc.stdin as import("bun").FileSink;
    await feed(sink);
    await sink.end();
  }
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (out.trim() === "") throw new Error(`child printed nothing; stderr: ${err}`);
  return JSON.parse(out) as ChildResult;
}

function sampleTar(): Uint8Array {
  const t = new TarBuilder();
  t.dir("etc", { mode: 0o755, mtime: 10 });
  t.file("etc/hostname", "banger\n", { mtime: 11 });
  const mixed = new Uint8Array(4096 * 6 + 10);
  mixed.fill(7, 0, 4096);
  mixed.fill(9, 4096 * 3, 4096 * 4 + 5);
  mixed[4096 * 6 + 3] = 1;
  t.file("mixed", mixed);
  t.file("zeros", new Uint8Array(4096 * 300));
  t.hardlink("etc/link", "etc/hostname");
  t.symlink("sym", "etc/hostname");
  return t.end();
}

async function summaryFromFile(tar: Uint8Array): Promise<ChildResult> {
  const path = join(work, "sample.tar");
  writeFileSync(path, tar);
  const loaded = await loadRootfsTar(path, { spoolNear: join(work, "out.img") });
  const entries: NonNullable<ChildResult["entries"]> = [];
  walkTree(loaded.root, (node, p) => {
    const e: NonNullable<ChildResult["entries"]>[number] = { path: p, kind: node.kind, size: node.size };
    if (node.kind === "file" && node.size > 0) {
      e.sha256 = createHash("sha256").update(readNodeData(loaded.sources, node)).digest("hex");
      e.runs = node.data!.runs ? [...node.data!.runs] : null;
      e.offset = node.data!.offset;
    }
    entries.push(e);
  });
  loaded.cleanup();
  return { ok: true, entries, identity: Buffer.from(loaded.identity).toString("hex") };
}

const spoolLeftovers = () => readdirSync(work).filter((n) => n.includes(".spool-"));

describe("standard input", () => {
  test("a piped tar gives the same tree, offsets, runs, content and identity as the file", async () => {
    const tar = sampleTar();
    const want = await summaryFromFile(tar);
    const got = await runChild(async (sink) => {
      // Dribble it in odd pieces to exercise the accumulation buffer.
      for (let i = 0; i < tar.length; i += 3001) {
        sink.write(tar.subarray(i, Math.min(i + 3001, tar.length)));
        await sink.flush();
      }
    });
    expect(got.ok).toBe(true);
    expect(got.entries).toEqual(want.entries!);
    expect(got.identity).toBe(want.identity!);
    expect(got.spool!.length).toBe(1);
    expect(got.spool![0]!.link).toMatch(/\/\.out\.img\.spool-\d+-[0-9a-f]+ \(deleted\)$/);
    expect(got.visibleBefore).toEqual([]);
    expect(got.visibleAfter).toEqual([]);
    expect(spoolLeftovers()).toEqual([]);
  }, 30_000);

  test("stdin redirected from a regular file is read in place (no spool)", async () => {
    const tar = sampleTar();
    const path = join(work, "redirect.tar");
    writeFileSync(path, tar);
    const fd = openSync(path, "r");
    try {
      const got = await runChild(() => {}, fd);
      expect(got.ok).toBe(true);
      expect(got.spool).toEqual([]);
      expect(got.identity).toBe((await summaryFromFile(tar)).identity!);
    } finally {
      closeSync(fd);
    }
  }, 30_000);

  test("a 1 GiB all-zero member streams through without taking disk space in the spool", async () => {
    const size = 1 << 30;
    const zeros = new Uint8Array(1 << 20);
    const got = await runChild(async (sink) => {
      sink.write(header({ name: "etc/small", size: 5 }));
      sink.write(new Uint8Array([104, 101, 108, 108, 111]));
      sink.write(padding(5));
      sink.write(header({ name: "huge-zero", size }));
      for (let i = 0; i < size; i += zeros.length) {
        sink.write(zeros);
        await sink.flush();
      }
      const t = new TarBuilder();
      t.file("after", "tail data");
      sink.write(t.end());
    });
    expect(got.ok).toBe(true);
    const huge = got.entries!.find((e) => e.path === "huge-zero")!;
    expect(huge).toMatchObject({ kind: "file", size, runs: [] });
    expect(got.entries!.find((e) => e.path === "after")!.sha256).toBe(createHash("sha256").update("tail data").digest("hex"));
    const spool = got.spool![0]!;
    expect(spool.size).toBeGreaterThan(size);
    expect(spool.blocks512 * 512).toBeLessThan(1 << 20); // a few header blocks, not a gigabyte
    expect(spoolLeftovers()).toEqual([]);
  }, 60_000);

  test("errors on stdin (truncated, garbage, empty) leave no spool file", async () => {
    const tar = sampleTar();
    const truncated = await runChild((sink) => {
      sink.write(tar.subarray(0, 512 * 6 + 100));
    });
    expect(truncated.ok).toBe(false);
    expect(truncated.message).toContain("truncated");
    const garbage = await runChild((sink) => {
      sink.write(new TextEncoder().encode("not a tar at all\n".repeat(100)));
    });
    expect(garbage.ok).toBe(false);
    expect(garbage.message).toContain("checksum");
    const empty = await runChild(() => {});
    expect(empty.ok).toBe(false);
    expect(empty.message).toContain("empty");
    expect(spoolLeftovers()).toEqual([]);
  }, 30_000);
});
