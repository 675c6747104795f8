// ZeroBlockScanner against a naive reference: random files built from all-zero blocks and
// blocks with a single non-zero byte anywhere (including spots the fast path does not sample),
// fed in random chunk sizes.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { ZeroBlockScanner, ZERO_BLOCK_SIZE } from "../../src/io/zeros.ts";

function referenceRuns(data: Uint8Array): Uint32Array | undefined {
  const runs: number[] = [];
  let anyZero = false;
  let runStart = -1;
  const blocks = Math.ceil(data.length / ZERO_BLOCK_SIZE);
  for (let b = 0; b < blocks; b++) {
    const zero = data.subarray(b * ZERO_BLOCK_SIZE, (b + 1) * ZERO_BLOCK_SIZE).every((x) => x === 0);
    if (zero) {
      anyZero = true;
      if (runStart >= 0) runs.push(runStart, b - runStart);
      runStart = -1;
    } else if (runStart < 0) runStart = b;
  }
  if (runStart >= 0) runs.push(runStart, blocks - runStart);
  return anyZero ? Uint32Array.from(runs) : undefined;
}

const blockArb = fc.oneof(
  fc.constant<number | null>(null), // all zero
  fc.integer({ min: 0, max: ZERO_BLOCK_SIZE - 1 }), // one non-zero byte at this spot
  fc.constantFrom(0, 2048, 4095, 1, 4094), // the sampled spots and their neighbours
);

test("ZeroBlockScanner finds exactly the non-zero 4 KiB blocks, whatever the chunking", () => {
  fc.assert(
    fc.property(
      fc.array(blockArb, { maxLength: 40 }),
      fc.integer({ min: 0, max: ZERO_BLOCK_SIZE - 1 }),
      fc.array(fc.integer({ min: 1, max: 3 * ZERO_BLOCK_SIZE }), { minLength: 1, maxLength: 8 }),
      (blocks, tail, chunkSizes) => {
        const size = blocks.length * ZERO_BLOCK_SIZE + (blocks.length > 0 ? tail : 0);
        const data = new Uint8Array(size);
        blocks.forEach((spot, i) => {
          if (spot !== null && i * ZERO_BLOCK_SIZE + spot < size) data[i * ZERO_BLOCK_SIZE + spot] = 7;
        });
        if (tail > 0 && size > 0 && blocks.length % 2 === 1) data[size - 1] = 9; // a non-zero partial last block
        const scanner = new ZeroBlockScanner();
        let p = 0;
        for (let i = 0; p < size; i++) {
          const n = Math.min(chunkSizes[i % chunkSizes.length]!, size - p);
          scanner.scan(data, p, p + n);
          p += n;
        }
        expect(scanner.finish()).toEqual(referenceRuns(data));
      },
    ),
    { numRuns: 500 },
  );
});

test("ZeroBlockScanner: a long zero run followed by data, in one chunk (the stride search)", () => {
  const data = new Uint8Array(1000 * ZERO_BLOCK_SIZE);
  data[777 * ZERO_BLOCK_SIZE + 100] = 1;
  data[999 * ZERO_BLOCK_SIZE + 5] = 1;
  const scanner = new ZeroBlockScanner();
  scanner.scan(data, 0, data.length);
  expect(Array.from(scanner.finish()!)).toEqual([777, 1, 999, 1]);
});
