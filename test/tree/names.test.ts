// displayName: how names from (possibly hostile) archives appear in messages: one line, bounded,
// no raw control characters, and lossless enough to tell names apart.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { TarError } from "../../src/tar/errors.ts";
import { DISPLAY_MAX_BYTES, displayName, oneLine, utf8ToName } from "../../src/tree/names.ts";

test("plain names are shown as they are, UTF-8 decoded", () => {
  expect(displayName("etc/hosts")).toBe("etc/hosts");
  expect(displayName(utf8ToName("päth/ファイル"))).toBe("päth/ファイル");
  expect(displayName("bad\xff")).toBe("bad\ufffd");
});

test("control characters are escaped: a newline and an ESC sequence neither split a message nor reach the terminal", () => {
  const name = "a\nb\x1b[31mred\x1b]0;title\x07\r\t\x7f";
  expect(displayName(name)).toBe("a\\nb\\x1b[31mred\\x1b]0;title\\x07\\r\\t\\x7f");
  // C1 controls (UTF-8 encoded), line separators and bidi overrides too; backslashes are doubled.
  expect(displayName(utf8ToName("x\u009by\u2028z\u202eq\\n"))).toBe("x\\u009by\\u2028z\\u202eq\\\\n");
  const err = new TarError(name, "refused");
  expect(err.message).not.toMatch(/[\x00-\x1f\x7f]/);
});

test("long names keep their head and tail and say how many bytes were elided", () => {
  const name = "H".repeat(10_000) + "middle" + "T".repeat(20 << 20);
  const shown = displayName(name);
  expect(shown.length).toBeLessThan(400);
  expect(shown.startsWith("HHHH")).toBe(true);
  expect(shown.endsWith("TTTT")).toBe(true);
  const elided = Number(/\.\.\.\[(\d+) bytes elided\]\.\.\./.exec(shown)![1]);
  expect(elided + shown.replace(/\.\.\.\[\d+ bytes elided\]\.\.\./, "").length).toBe(name.length);
  // Never cut inside a UTF-8 sequence: no replacement characters appear from the cut.
  const multi = utf8ToName("é".repeat(400));
  expect(displayName(multi)).not.toContain("\ufffd");
  expect(displayName("n".repeat(DISPLAY_MAX_BYTES))).toBe("n".repeat(DISPLAY_MAX_BYTES));
});

test("property: any byte string displays as one bounded line without control characters", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
      const shown = displayName(Buffer.from(bytes).toString("latin1"));
      expect(shown).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      expect(shown.length).toBeLessThanOrEqual(4 * DISPLAY_MAX_BYTES + 40);
    }),
    { numRuns: 500 },
  );
});

test("oneLine, the CLI's last net: escapes controls, keeps backslashes, bounds the length", () => {
  expect(oneLine("a\nb\x1bc\\n")).toBe("a\\nb\\x1bc\\n");
  const long = oneLine("x".repeat(1_000_000), 4096);
  expect(long.length).toBeLessThan(4200);
  expect(long).toContain("characters elided");
});
