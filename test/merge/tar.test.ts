// End to end through the tar parser: three layers written as real tar bytes (PAX, GNU long names,
// whiteouts as regular members), parsed by TarParser, merged, and each surviving file's bytes read
// back from its own layer's bytes through the data reference.

import { expect, test } from "bun:test";
import { LayerMerger } from "../../src/merge/index.ts";
import { TarParser, type TarEntry } from "../../src/tar/index.ts";
import type { ByteSource, FsNode } from "../../src/tree/types.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { at, paths } from "./factory.ts";

class BytesSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  readInto(into: Uint8Array, offset: number): void {
    if (offset + into.length > this.bytes.length) throw new Error("short read");
    into.set(this.bytes.subarray(offset, offset + into.length));
  }
  close(): void {}
}

function entriesOf(tar: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  const parser = new TarParser((e) => out.push(e));
  // Odd chunk sizes: offsets must not depend on how the stream arrives.
  for (let i = 0; i < tar.length; i += 777) parser.push(tar.subarray(i, i + 777));
  parser.end();
  return out;
}

function content(sources: ByteSource[], node: FsNode): string {
  const out = new Uint8Array(node.size);
  if (node.size > 0) {
    const runs = node.data!.runs ?? [0, Math.ceil(node.size / 4096)];
    for (let i = 0; i < runs.length; i += 2) {
      const start = runs[i]! * 4096;
      const end = Math.min((runs[i]! + runs[i + 1]!) * 4096, node.size);
      sources[node.data!.source]!.readInto(out.subarray(start, end), node.data!.offset + start);
    }
  }
  return Buffer.from(out).toString("utf8");
}

test("three tar layers merge into the expected tree, each file reading its bytes from its own layer", () => {
  const long = `deep/${"n".repeat(120)}/file`;
  const base = new TarBuilder();
  base.dir("etc", { mode: 0o755 });
  base.file("etc/hosts", "127.0.0.1 base\n");
  base.file("etc/passwd", "root:x:0:0\n", { mode: 0o644 });
  base.hardlink("etc/passwd-", "etc/passwd");
  base.dir("var/cache", { mode: 0o755 });
  base.file("var/cache/big", "x".repeat(5000));
  base.file(long, "long name\n", { gnuLong: true });
  // Data, a zero block (a hole: not in the runs), data.
  base.file("zeros", new Uint8Array(3 * 4096).fill(0x41).fill(0, 4096, 8192));

  const mid = new TarBuilder();
  mid.file("etc/.wh.hosts", "");
  mid.file("etc/passwd", "root:x:0:0\nuser:x:1000:1000\n", { pax: { "SCHILY.xattr.user.tag": "mid" } });
  mid.file("var/cache/.wh..wh..opq", "");
  mid.file("var/cache/fresh", "fresh\n");
  mid.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");

  const top = new TarBuilder();
  top.file("etc/hosts", "127.0.0.1 top\n", { uid: 1000, gid: 1000 });
  top.file(".wh.deep", "");
  top.dir("etc", { mode: 0o711 });

  const tars = [base.end(), mid.end(), top.end()];
  const sources = tars.map((t) => new BytesSource(t));
  const m = new LayerMerger();
  tars.forEach((tar, i) => {
    m.beginLayer(i, `layer ${i + 1}/3`);
    for (const e of entriesOf(tar)) m.add(e);
    m.endLayer();
  });

  expect(paths(m.root)).toEqual(["etc/", "etc/hosts", "etc/localtime", "etc/passwd", "etc/passwd-", "var/", "var/cache/", "var/cache/fresh", "zeros"]);
  expect(content(sources, at(m.root, "etc/hosts")!)).toBe("127.0.0.1 top\n");
  expect(at(m.root, "etc/hosts")!.uid).toBe(1000);
  expect(content(sources, at(m.root, "etc/passwd")!)).toBe("root:x:0:0\nuser:x:1000:1000\n");
  expect(Buffer.from(at(m.root, "etc/passwd")!.xattrs.get("user.tag")!).toString()).toBe("mid");
  // The hardlink kept the base layer's node when the name it shared was replaced.
  expect(content(sources, at(m.root, "etc/passwd-")!)).toBe("root:x:0:0\n");
  expect(at(m.root, "etc/passwd-")!.data!.source).toBe(0);
  expect(at(m.root, "etc/localtime")!.target).toBe("/usr/share/zoneinfo/UTC");
  expect(at(m.root, "etc")!.mode).toBe(0o711);
  expect(content(sources, at(m.root, "var/cache/fresh")!)).toBe("fresh\n");
  const zeros = at(m.root, "zeros")!;
  expect([...zeros.data!.runs!]).toEqual([0, 1, 2, 1]);
  expect(content(sources, zeros)).toBe("A".repeat(4096) + "\0".repeat(4096) + "A".repeat(4096));
});
