// Header checksums and fields: unsigned sums (POSIX), signed sums (historic tars), corruption,
// and names with bytes >= 0x80 kept as byte strings.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { fieldString, parseHeader, verifyChecksum } from "../../src/tar/headers.ts";
import { TarError } from "../../src/tar/errors.ts";
import { checksumOf, header } from "../helpers/tarwriter.ts";

const highName = new Uint8Array([0x63, 0xe9, 0xff, 0x80, 0x2e, 0x74, 0x78, 0x74]); // "c\xe9\xff\x80.txt"

function signedChecksumOf(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    sum += b >= 0x80 ? b - 256 : b;
  }
  return sum;
}

test("unsigned checksum (POSIX) is accepted, and a name's high bytes stay one char per byte", () => {
  const block = header({ name: highName, uname: "rööt" });
  expect(verifyChecksum(block)).toBe(true);
  expect(parseHeader(block, 0, 0).name).toBe("c\xe9\xff\x80.txt");
  expect(fieldString(block, 0, 100)).toBe("c\xe9\xff\x80.txt");
});

test("signed checksum (historic tars) is accepted too", () => {
  const plain = header({ name: highName });
  const signed = signedChecksumOf(plain);
  expect(signed).not.toBe(checksumOf(plain));
  expect(verifyChecksum(header({ name: highName, checksum: signed }))).toBe(true);
});

test("a wrong checksum is refused, naming the member and the offset", () => {
  const block = header({ name: "etc/passwd", checksum: checksumOf(header({ name: "etc/passwd" })) + 1 });
  expect(verifyChecksum(block)).toBe(false);
  expect(() => parseHeader(block, 0, 1536)).toThrow(TarError);
  expect(() => parseHeader(block, 0, 1536)).toThrow(/etc\/passwd.*checksum mismatch.*1536/);
});

test("headers at any 512-byte offset of a larger buffer", () => {
  const buf = new Uint8Array(3 * 512);
  buf.set(header({ name: "a", size: 5 }), 512);
  expect(verifyChecksum(buf, 512)).toBe(true);
  expect(parseHeader(buf, 512, 512)).toMatchObject({ name: "a", size: 5 });
});

test("checksum: arbitrary blocks at any byte alignment agree with a byte-by-byte sum (word and byte paths)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 512, maxLength: 512 }), fc.nat({ max: 7 }), fc.boolean(), (bytes, shift, valid) => {
      const block = Uint8Array.from(bytes);
      const sum = checksumOf(block);
      // Write a checksum that is either right or off by one, as 6 octal digits + NUL + space.
      const digits = (valid ? sum : sum + 1).toString(8).padStart(6, "0");
      for (let i = 0; i < 6; i++) block[148 + i] = digits.charCodeAt(i);
      block[154] = 0;
      block[155] = 0x20;
      const expected = valid || signedChecksumOf(block) === sum + 1;
      const backing = new Uint8Array(512 + 8);
      backing.set(block, shift);
      expect(verifyChecksum(backing, shift)).toBe(expected);
      expect(verifyChecksum(backing.subarray(shift, shift + 512))).toBe(expected);
    }),
    { numRuns: 500 },
  );
});
