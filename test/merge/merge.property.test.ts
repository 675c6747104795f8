// Property: for random layer stacks (files, dirs, symlinks, fifos, hardlinks, whiteouts and opaque
// markers at random positions, type changes, dir over dir, odd path spellings), LayerMerger gives
// the tree the flat model in test/helpers/merge-model.ts gives, or fails on the same member.
// Symlinks point at themselves, so one met as a parent is a loop both sides refuse; the rarer
// cases the model cannot judge (a hardlinked symlink used as a parent) are skipped.

import { expect, test } from "bun:test";
import fc from "fast-check";
import { LayerMerger, MergeError } from "../../src/merge/index.ts";
import type { TarEntry } from "../../src/tar/reader.ts";
import { flattenTree, mergeModel, Unjudgeable, type FlatNode, type ModelLayer, type ModelResult } from "../helpers/merge-model.ts";

type Spec =
  | { k: "file"; path: string; mode: number; uid: number; mtime: number; size: number }
  | { k: "dir"; path: string; mode: number; uid: number; mtime: number; spelling: number }
  | { k: "symlink"; path: string; absolute: boolean }
  | { k: "fifo"; path: string }
  /** `target` picks one of the non-directories listed before it in the stack (a random path if none). */
  | { k: "hardlink"; path: string; target: number; fallback: string; spelling: number }
  | { k: "whiteout"; parent: string; name: string }
  | { k: "opaque"; parent: string }
  | { k: "root"; mode: number };

const comp = fc.constantFrom("a", "b", "c");
const path = fc.array(comp, { minLength: 1, maxLength: 3 }).map((cs) => cs.join("/"));
const dirPath = fc.oneof({ weight: 1, arbitrary: fc.constant("") }, { weight: 4, arbitrary: path });
/** Non-directories: mostly a leaf name no directory uses, so fewer members land under a file. */
const leafPath = fc.oneof(
  { weight: 1, arbitrary: path },
  { weight: 2, arbitrary: fc.tuple(fc.array(comp, { maxLength: 2 }), fc.constantFrom("x", "y")).map(([cs, leaf]) => [...cs, leaf].join("/")) },
);
const mode = fc.constantFrom(0o755, 0o700, 0o644, 0o4755);
const uid = fc.constantFrom(0, 1000);
const mtime = fc.integer({ min: 1, max: 9 });

const spec: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant("file" as const), path: leafPath, mode, uid, mtime, size: fc.constantFrom(0, 7) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant("dir" as const), path, mode, uid, mtime, spelling: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("symlink" as const), path: leafPath, absolute: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("fifo" as const), path: leafPath }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("hardlink" as const), path: leafPath, target: fc.nat(), fallback: path, spelling: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("whiteout" as const), parent: dirPath, name: comp }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("opaque" as const), parent: dirPath }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("root" as const), mode }) },
);
const stack = fc.array(fc.array(spec, { maxLength: 10 }), { minLength: 1, maxLength: 4 });

const join = (parent: string, name: string) => (parent === "" ? name : `${parent}/${name}`);
const spell = (p: string, n: number) => [p, `./${p}`, `/${p}`, `${p}/`][n]!;

function toEntries(layers: Spec[][]): ModelLayer[] {
  let offset = 512;
  const nonDirs: string[] = [];
  return layers.map((specs, l) => ({
    source: 10 + l,
    entries: specs.map((s): TarEntry => {
      const t = { sec: "mtime" in s ? s.mtime : 5, nsec: 0 };
      const base: TarEntry = { type: "file", path: "", linkname: "", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: t, atime: t, ctime: t, major: 0, minor: 0, xattrs: new Map(), headerOffset: offset - 512, dataOffset: offset };
      offset += 1024;
      switch (s.k) {
        case "file":
          nonDirs.push(s.path);
          return { ...base, path: s.path, mode: s.mode, uid: s.uid, gid: s.uid, size: s.size };
        case "dir":
          return { ...base, type: "dir", path: spell(s.path, s.spelling), mode: s.mode, uid: s.uid, gid: s.uid };
        case "symlink":
          nonDirs.push(s.path);
          return { ...base, type: "symlink", path: s.path, linkname: s.absolute ? `/${s.path}` : s.path.split("/").pop()!, mode: 0o777 };
        case "fifo":
          nonDirs.push(s.path);
          return { ...base, type: "fifo", path: s.path };
        case "hardlink": {
          const target = nonDirs.length > 0 ? nonDirs[s.target % nonDirs.length]! : s.fallback;
          nonDirs.push(s.path);
          return { ...base, type: "hardlink", path: s.path, linkname: spell(target, s.spelling) };
        }
        case "whiteout":
          return { ...base, path: join(s.parent, `.wh.${s.name}`) };
        case "opaque":
          return { ...base, path: join(s.parent, ".wh..wh..opq") };
        case "root":
          return { ...base, type: "dir", path: "./", mode: s.mode };
      }
    }),
  }));
}

type Outcome = { ok: true; paths: Map<string, FlatNode> } | { ok: false; layer: number; index: number };

function runMerger(layers: ModelLayer[]): Outcome {
  const m = new LayerMerger();
  for (let l = 0; l < layers.length; l += 1) {
    m.beginLayer(layers[l]!.source, `layer ${l}`);
    const entries = layers[l]!.entries;
    for (let i = 0; i < entries.length; i += 1) {
      try {
        m.add(entries[i]!);
      } catch (err) {
        if (!(err instanceof MergeError)) throw err;
        expect(err.layer).toBe(`layer ${l}`);
        expect(err.entry).toBe(entries[i]!.path);
        return { ok: false, layer: l, index: i };
      }
    }
    m.endLayer();
  }
  return { ok: true, paths: flattenTree(m.root) };
}

/** Sorted, printable form for toEqual (a Map diff is hard to read). */
function show(r: ModelResult | Outcome): unknown {
  if (!r.ok) return { error: { layer: r.layer, index: r.index } };
  return [...r.paths].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, n]) => ({ p, ...n }));
}

function check(layers: ModelLayer[]): "skipped" | "merged" | "refused" {
  let expected: ModelResult;
  try {
    expected = mergeModel(layers);
  } catch (err) {
    if (err instanceof Unjudgeable) return "skipped";
    throw err;
  }
  expect(show(runMerger(layers))).toEqual(show(expected));
  return expected.ok ? "merged" : "refused";
}

test("LayerMerger equals the model over random layer stacks", () => {
  const counts = { skipped: 0, merged: 0, refused: 0 };
  fc.assert(
    fc.property(stack, (layers) => {
      counts[check(toEntries(layers))] += 1;
    }),
    { numRuns: 3000 },
  );
  console.log(`[merge property] ${JSON.stringify(counts)}`);
  // Enough stacks must merge without an error, and few be skipped, for the comparison to mean something.
  expect(counts.merged).toBeGreaterThan(1000);
  expect(counts.skipped).toBeLessThan(300);
});
