import { expect, test } from "bun:test";
import fc from "fast-check";
import { crc32c, crc32cU32 } from "../../src/ext4/crc32c.ts";

test("crc32c: the standard check value (\"123456789\" -> 0xE3069283 after the final inversion)", () => {
  const raw = crc32c(0xffffffff, new TextEncoder().encode("123456789"));
  expect((~raw >>> 0).toString(16)).toBe("e3069283");
});

test("crc32c: continuing over pieces equals one pass, at any split and alignment", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const i = bytes.length === 0 ? 0 : a % (bytes.length + 1);
      const j = i + (bytes.length - i === 0 ? 0 : b % (bytes.length - i + 1));
      const whole = crc32c(0xffffffff, bytes);
      const pieces = crc32c(crc32c(crc32c(0xffffffff, bytes, 0, i), bytes, i, j), bytes, j, bytes.length);
      expect(pieces).toBe(whole);
    }),
  );
});

test("crc32cU32 equals crc32c over the value's four little-endian bytes", () => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (seed, value) => {
      const le = new Uint8Array(4);
      new DataView(le.buffer).setUint32(0, value, true);
      expect(crc32cU32(seed, value)).toBe(crc32c(seed, le));
    }),
  );
});

/** Bit by bit, straight from the polynomial: nothing shared with the table-driven code. */
function crc32cBitwise(crc: number, bytes: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

test("crc32c equals a bitwise reference at every alignment and length (word and byte paths)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 700 }), fc.nat({ max: 7 }), fc.nat({ max: 0xffffffff }), (bytes, shift, seed) => {
      const backing = new Uint8Array(bytes.length + 8);
      backing.set(bytes, shift);
      const view = backing.subarray(shift, shift + bytes.length);
      expect(crc32c(seed, view)).toBe(crc32cBitwise(seed, bytes));
      expect(crc32c(seed, backing, shift, shift + bytes.length)).toBe(crc32cBitwise(seed, bytes));
    }),
    { numRuns: 300 },
  );
});
