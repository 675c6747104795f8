// gzip inflated in place by node:zlib's handle (src/oci/gzip.ts), as the layer worker drives it,
// against node:zlib's own gunzipSync: the same bytes for any input pieces and output room, the
// same members and padding rules, the same errors; and the layer worker's two gzip paths (in
// place, and node:zlib's stream) agree.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import zlib from "node:zlib";
import { errorText } from "../../src/oci/errors.ts";
import { GunzipInPlace } from "../../src/oci/gzip.ts";
import { layerChunks } from "../../src/oci/layer-stream.ts";
import { concat } from "../helpers/oci-images.ts";

/** Inflates `blob` fed in `inPiece`-byte pieces into `room`-byte output windows, as inflate-worker.ts's gzipInPlace does. */
function inflate(blob: Uint8Array, inPiece: number, room: number): Uint8Array {
  const gz = GunzipInPlace.create();
  if (!gz) throw new Error("this Bun's node:zlib has no gunzip handle to drive in place");
  const out: Uint8Array[] = [];
  const dst = new Uint8Array(room);
  try {
    for (let at = 0; at < blob.length; at += inPiece) {
      const chunk = blob.subarray(at, Math.min(blob.length, at + inPiece));
      for (let inPos = 0; ; ) {
        gz.step(chunk, inPos, chunk.length, dst, 0);
        inPos = gz.inPos;
        out.push(dst.slice(0, gz.outPos));
        if (inPos >= chunk.length && gz.outPos < dst.length) break;
      }
    }
    for (let more = true; more; ) {
      more = gz.finish(dst, 0);
      out.push(dst.slice(0, gz.outPos));
    }
  } finally {
    gz.close();
  }
  return concat(out);
}

/** gunzipSync's answer: the bytes, or its error as layer errors word it ("Z_DATA_ERROR: ..."). */
function reference(blob: Uint8Array): Uint8Array | string {
  try {
    return new Uint8Array(zlib.gunzipSync(blob));
  } catch (err) {
    return errorText(err);
  }
}

function ours(blob: Uint8Array, inPiece: number, room: number): Uint8Array | string {
  try {
    return inflate(blob, inPiece, room);
  } catch (err) {
    return (err as Error).message;
  }
}

const text = new TextEncoder().encode("a line of a text file\n".repeat(20_000));
const noise = crypto.getRandomValues(new Uint8Array(200_000));
const one = new Uint8Array(zlib.gzipSync(concat([text, noise])));
const two = concat([new Uint8Array(zlib.gzipSync(text)), new Uint8Array(zlib.gzipSync(noise))]);

describe("gzip inflated in place", () => {
  test("this Bun offers the gunzip handle (else layers fall back to node:zlib's slower stream)", () => {
    const gz = GunzipInPlace.create();
    expect(gz).not.toBeNull();
    gz?.close();
  });

  test("the same bytes as gunzipSync for tiny and large pieces, one member or two", () => {
    for (const blob of [one, two]) {
      const want = reference(blob);
      for (const [inPiece, room] of [[7, 1], [1, 13], [4096, 65536], [1 << 20, 1 << 20], [blob.length, 3]] as const) {
        expect(ours(blob, inPiece, room)).toEqual(want);
      }
    }
  });

  test("zero padding after the last member is ignored; anything else there, a truncation, a bad checksum are gunzipSync's errors", () => {
    const cases: [string, Uint8Array][] = [
      ["padding", concat([one, new Uint8Array(10_000)])],
      ["garbage after a member", concat([one, new TextEncoder().encode("garbage!")])],
      ["truncated", one.subarray(0, one.length - 5)],
      ["cut inside the header", one.subarray(0, 5)],
      ["empty", new Uint8Array(0)],
      ["not gzip", new TextEncoder().encode("plain text, not gzip")],
      ["bad checksum", (() => { const b = one.slice(); b[b.length - 6] = b[b.length - 6]! ^ 1; return b; })()],
    ];
    for (const [name, blob] of cases) {
      const want = reference(blob);
      if (name === "padding") expect(want).toEqual(concat([text, noise]));
      else expect(typeof want, name).toBe("string");
      for (const [inPiece, room] of [[3, 7], [65536, 1 << 20]] as const) expect(ours(blob, inPiece, room), `${name} ${inPiece}/${room}`).toEqual(want);
    }
  });

  test("property: any split of the input and any output room give gunzipSync's bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 5000 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 700 }), fc.integer({ min: 1, max: 900 }), (bytes, members, inPiece, room) => {
        const blob = concat(Array.from({ length: members }, (_, i) => new Uint8Array(zlib.gzipSync(bytes.subarray(0, bytes.length - i)))));
        expect(ours(blob, inPiece, room)).toEqual(reference(blob));
      }),
      { numRuns: 200 },
    );
  });
});

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array | string> {
  const parts: Uint8Array[] = [];
  try {
    for await (const c of it) parts.push(c.slice());
  } catch (err) {
    return (err as Error).message;
  }
  return concat(parts);
}

describe("the layer worker's gzip paths", () => {
  test("in place and through node:zlib's stream: the same bytes, the same errors naming the layer", async () => {
    for (const blob of [two, concat([one, new Uint8Array(512)]), one.subarray(0, 100_000), concat([one, new TextEncoder().encode("x")])]) {
      const inPlace = await collect(layerChunks(pieces(blob, 65536), { compression: "gzip", where: "layer 1 of g" }));
      const stream = await collect(layerChunks(pieces(blob, 65536), { compression: "gzip", where: "layer 1 of g", noNativeGzip: true }));
      expect(inPlace).toEqual(stream);
      if (typeof inPlace === "string") expect(inPlace).toStartWith("layer 1 of g: gzip decompression failed: ");
    }
  });
});
