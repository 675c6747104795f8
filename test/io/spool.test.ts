// spoolStream: whatever the bounds of the input's pieces, the spool holds the stream at the
// same offsets, the observer sees every byte once and in order, and the spool is written
// only at block boundaries (its holes are whole 4 KiB blocks).
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool, spoolStream } from "../../src/io/spool.ts";

const dir = mkdtempSync(join(tmpdir(), "banger-spool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A stream with runs of zero blocks (holes) and data, cut into the given piece sizes. */
function pieces(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of cuts) {
    if (at >= data.length) break;
    out.push(data.slice(at, Math.min(data.length, at + c)));
    at += c;
  }
  if (at < data.length) out.push(data.slice(at));
  return out;
}

async function* from(list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of list) yield p;
}

async function roundTrip(data: Uint8Array, cuts: number[], chunkSize: number, readSoon: boolean): Promise<{ observed: Uint8Array[]; positions: number[]; file: Uint8Array }> {
  const path = join(dir, `spool-${n++}`);
  const spool = Spool.create(path, { readSoon });
  const positions: number[] = [];
  const write = spool.write.bind(spool);
  spool.write = (buf, len, position) => {
    positions.push(position);
    write(buf, len, position);
  };
  const observed: Uint8Array[] = [];
  const length = await spoolStream(from(pieces(data, cuts)), spool, { observe: (c) => (observed.push(new Uint8Array(c)), true), chunkSize });
  expect(length).toBe(data.length);
  await spool.close();
  const file = new Uint8Array(readFileSync(`/proc/self/fd/${spool.fd}`));
  return { observed, positions, file };
}

const stream = fc
  .array(fc.record({ blocks: fc.integer({ min: 0, max: 5 }), zero: fc.boolean(), extra: fc.integer({ min: 0, max: 700 }) }), { maxLength: 12 })
  .map((runs) => {
    const parts = runs.map((r, i) => {
      const p = new Uint8Array(r.blocks * 4096 + r.extra);
      if (!r.zero) for (let j = 0; j < p.length; j++) p[j] = (i * 31 + j) % 251 || 1;
      return p;
    });
    const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) all.set(p, (at += p.length) - p.length);
    return all;
  });
const cuts = fc.array(fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 8192, max: 40000 })), { maxLength: 40 });

describe("spoolStream", () => {
  test("any piece bounds: the spool and the observer get the stream, at block boundaries", async () => {
    await fc.assert(
      fc.asyncProperty(stream, cuts, fc.constantFrom(16384, 32768), fc.boolean(), async (data, cut, chunkSize, readSoon) => {
        const { observed, positions, file } = await roundTrip(data, cut, chunkSize, readSoon);
        expect(Buffer.concat(observed).equals(Buffer.from(data))).toBe(true);
        for (const o of observed) expect(o.length).toBeLessThanOrEqual(chunkSize);
        for (const p of positions) expect(p % 4096).toBe(0);
        expect(Buffer.from(file).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  test("large pieces pass through uncopied after a short one", async () => {
    // A decoder's partial flush (1000 bytes) and then 1 MiB-like pieces: each later piece's
    // whole blocks are observed as views of the piece itself, not copies.
    const data = new Uint8Array(1000 + 3 * 20000).map((_, i) => (i % 253) + 1);
    const list = pieces(data, [1000, 20000, 20000, 20000]);
    const seen: Uint8Array[] = [];
    const spool = Spool.create(join(dir, `spool-${n++}`), { readSoon: true });
    await spoolStream(from(list), spool, { observe: (c) => (seen.push(c), true), chunkSize: 32768 });
    await spool.close();
    const views = seen.filter((c) => list.some((p) => p.buffer === c.buffer));
    expect(views.reduce((s, c) => s + c.length, 0)).toBeGreaterThan(data.length / 2);
  });
});
