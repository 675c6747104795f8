// Merge speed and a real-world cross-check. The merge runs once per image pull, on the main
// thread, next to decompression: 12k entries in 5 layers must take well under 100 ms.
// - synthetic: a Debian-sized tree (12k entries) split into 5 layers, the upper ones re-listing
//   directories, replacing and whiting out files and marking directories opaque;
// - Debian (when the fixture tar is cached; building it needs root and network): its members split
//   into 5 consecutive layers merge to the same tree as RootfsBuilder makes from the one tar.

import { expect, test } from "bun:test";
import { existsSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { LayerMerger } from "../../src/merge/index.ts";
import { parseTarFd, RootfsBuilder, TarParser, type TarEntry } from "../../src/tar/index.ts";
import { fixtureCacheDir } from "../helpers/debian.ts";
import { flattenTree, type FlatNode } from "../helpers/merge-model.ts";
import { dir, file, hardlink, symlink, wh } from "./factory.ts";

function mergeAll(layers: TarEntry[][]): LayerMerger {
  const m = new LayerMerger();
  layers.forEach((entries, i) => {
    m.beginLayer(i, `layer ${i + 1}/${layers.length}`);
    for (const e of entries) m.add(e);
    m.endLayer();
  });
  return m;
}

/** Best of `runs` wall times of `fn`, in ms (the first run also warms the JIT up). */
function bestOf(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i += 1) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

function syntheticLayers(): TarEntry[][] {
  const base: TarEntry[] = [];
  const dirs: string[] = [];
  for (let a = 0; a < 40; a += 1) {
    for (let b = 0; b < 40; b += 1) {
      const d = `usr/d${a}/e${b}`;
      if (b === 0) base.push(dir(`usr/d${a}`));
      base.push(dir(d));
      dirs.push(d);
      for (let f = 0; f < 6; f += 1) base.push(file(`${d}/f${f}`, { size: 100 }));
      base.push(symlink(`${d}/link`, "f0"), hardlink(`${d}/hard`, `${d}/f1`));
    }
  }
  const layers: TarEntry[][] = [base];
  for (let l = 1; l < 5; l += 1) {
    const upper: TarEntry[] = [];
    for (let i = l; i < dirs.length; i += 8) {
      const d = dirs[i]!;
      upper.push(dir(d, { mode: 0o700 }), file(`${d}/f2`, { size: 50 }), wh(`${d}/.wh.f3`), file(`${d}/new${l}`));
      if (i % 40 === l) upper.push(wh(`${d}/.wh..wh..opq`));
      if (i % 80 === l) upper.push(wh(`${d.split("/").slice(0, 2).join("/")}/.wh.e${(i % 40) + 1}`));
    }
    layers.push(upper);
  }
  return layers;
}

test("12k synthetic entries in 5 layers (replacements, whiteouts, opaque dirs) merge in well under 100 ms", () => {
  const layers = syntheticLayers();
  const count = layers.reduce((n, l) => n + l.length, 0);
  expect(count).toBeGreaterThan(12_000);
  let m: LayerMerger | null = null;
  const ms = bestOf(5, () => {
    m = mergeAll(layers);
  });
  // The result is what the layers say, not just fast: an opaque dir of layer 1 keeps only its own.
  const tree = flattenTree(m!.root);
  expect(tree.get("usr/d0/e1")?.mode).toBe(0o700);
  expect(tree.has("usr/d0/e1/f0")).toBe(false);
  expect(tree.get("usr/d0/e1/new1")?.kind).toBe("file");
  expect(tree.has("usr/d0/e9/f3")).toBe(false);
  expect(tree.get("usr/d0/e9/f2")?.source).toBe(1);
  console.log(`[merge speed] synthetic: ${count} entries in 5 layers, best of 5: ${ms.toFixed(1)} ms`);
  expect(ms).toBeLessThan(100);
});

const debianTar = join(fixtureCacheDir(), "debian-rootfs.tar");

test.skipIf(!existsSync(debianTar))("the Debian rootfs split into 5 layers merges to RootfsBuilder's tree, in well under 100 ms", () => {
  const entries: TarEntry[] = [];
  const fd = openSync(debianTar, "r");
  try {
    parseTarFd(fd, new TarParser((e) => entries.push(e), { detectZeros: false }));
  } finally {
    closeSync(fd);
  }
  const layers: TarEntry[][] = [];
  for (let l = 0; l < 5; l += 1) layers.push(entries.slice(Math.floor((entries.length * l) / 5), Math.floor((entries.length * (l + 1)) / 5)));

  const single = new RootfsBuilder(0);
  for (const e of entries) single.add(e);
  let m: LayerMerger | null = null;
  const ms = bestOf(5, () => {
    m = mergeAll(layers);
  });
  const merged = flattenTree(m!.root);
  const expected = flattenTree(single.root);
  expect(merged.size).toBe(expected.size);
  for (const [path, node] of expected) {
    const got = merged.get(path);
    // Data comes from the layer holding the member; everything else must match.
    const same: FlatNode | undefined = got === undefined ? undefined : { ...got, source: node.source };
    expect(same).toEqual(node);
  }
  console.log(`[merge speed] Debian: ${entries.length} entries in 5 layers, best of 5: ${ms.toFixed(1)} ms`);
  expect(ms).toBeLessThan(100);
}, 30_000);
