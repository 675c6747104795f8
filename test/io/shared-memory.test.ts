// hugePageShared: shared memory of the size asked for, on a huge-page boundary, that a worker
// sees as the same bytes (the layer worker's rings and the image writer's slots rely on it),
// and advised as huge pages where Linux has transparent huge pages.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { ptr } from "bun:ffi";
import { HUGE_PAGE, hugePageShared } from "../../src/io/shared-memory.ts";

test("a large area starts on a huge-page boundary, is shared and zero-filled", () => {
  for (const bytes of [HUGE_PAGE, 3 * HUGE_PAGE + 4096, 16 << 20]) {
    const v = hugePageShared(bytes);
    expect(v.length).toBe(bytes);
    expect(v.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Number(ptr(v)) % HUGE_PAGE).toBe(0);
    expect(v.every((b) => b === 0)).toBe(true);
  }
});

test("a small area is plain shared memory of that size", () => {
  const v = hugePageShared(64 << 10);
  expect(v.length).toBe(64 << 10);
  expect(v.byteOffset).toBe(0);
  expect(v.buffer).toBeInstanceOf(SharedArrayBuffer);
});

test("a view posted to a worker is the same memory there, offset and all", async () => {
  const v = hugePageShared(4 << 20);
  const source = "self.onmessage = (e) => { const v = e.data; v[v.length - 1] = 7; postMessage([v.byteOffset, v.length]); };";
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "application/javascript" })));
  try {
    const seen = await new Promise<number[]>((resolve) => {
      worker.onmessage = (e: MessageEvent<number[]>) => resolve(e.data);
      worker.postMessage(v);
    });
    expect(seen).toEqual([v.byteOffset, v.length]);
    expect(v[v.length - 1]).toBe(7);
  } finally {
    worker.terminate();
  }
});

// Where the kernel has THP at all, the advice shows as the "hg" flag on the mapping that holds
// the area, whatever the system-wide mode (a flag is no promise of huge pages: "never" ignores it).
const thp = process.platform === "linux" && existsSync("/sys/kernel/mm/transparent_hugepage/enabled");
// CI's kernels have THP: there a missing /sys entry fails the test rather than skipping it.
const why = thp ? "" : " (skipped: no /sys/kernel/mm/transparent_hugepage on this kernel)";
test.skipIf(!thp && process.env.CI !== "true")(`the area is advised as huge pages (smaps VmFlags: hg)${why}`, () => {
  const v = hugePageShared(8 << 20);
  v.fill(1);
  const start = Number(ptr(v));
  const maps = readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  const holding = maps.filter((m) => {
    const [lo, hi] = m.slice(0, m.indexOf(" ")).split("-").map((x) => parseInt(x, 16));
    return lo! <= start && start < hi!;
  });
  expect(holding.length).toBe(1);
  expect(holding[0]!.match(/^VmFlags:(.*)$/m)?.[1]?.split(" ")).toContain("hg");
});
