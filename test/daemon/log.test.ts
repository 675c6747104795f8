// The daemon's JSON-lines log: one object per line, rotated by size with a bounded number of
// old files, printed for people by formatLogLine, followed across rotations by readLog.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JsonLinesLogger, formatLogLine, readLog } from "../../src/daemon/log.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-log-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const clock = () => new Date("2026-12-04T10:00:00.000Z");

test("lines are JSON with time, level, msg and the fields; errors become text; 0600", () => {
  const file = path.join(tmp, "a.log");
  const log = new JsonLinesLogger(file, { now: clock });
  log.info("pull done", { name: "deb", ms: 12 });
  log.error("pull failed", { err: new TypeError("bad"), msg: "not the message" });
  log.close();
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as unknown);
  expect(lines).toEqual([
    { name: "deb", ms: 12, time: "2026-12-04T10:00:00.000Z", level: "info", msg: "pull done" },
    { err: "TypeError: bad", msg: "pull failed", time: "2026-12-04T10:00:00.000Z", level: "error" },
  ]);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
});

test("rotation by size keeps `keep` old files, and no file grows past the limit", () => {
  const file = path.join(tmp, "b.log");
  const log = new JsonLinesLogger(file, { maxBytes: 1000, keep: 2, now: clock });
  for (let i = 0; i < 100; i++) log.info(`line ${i}`, { pad: "x".repeat(50) });
  log.close();
  expect(fs.readdirSync(tmp).filter((n) => n.startsWith("b.log")).sort()).toEqual(["b.log", "b.log.1", "b.log.2"]);
  for (const f of ["b.log", "b.log.1", "b.log.2"]) expect(fs.statSync(path.join(tmp, f)).size).toBeLessThanOrEqual(1000);
  // The newest lines are in b.log, the ones just before in .1, in order, none split.
  const read = (f: string) => fs.readFileSync(path.join(tmp, f), "utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { msg: string }).msg);
  const newest = read("b.log");
  const older = read("b.log.1");
  expect(newest.at(-1)).toBe("line 99");
  expect(Number(older.at(-1)!.split(" ")[1]) + 1).toBe(Number(newest[0]!.split(" ")[1]));
  // A logger opened on an existing file goes on appending to it.
  const again = new JsonLinesLogger(file, { maxBytes: 1000, keep: 2, now: clock });
  again.info("after reopen");
  again.close();
  expect(read("b.log").at(-1)).toBe("after reopen");
});

test("formatLogLine: time, level, message, then key=value (JSON for values with spaces)", () => {
  expect(formatLogLine(JSON.stringify({ time: "T", level: "info", msg: "pull done", name: "deb", ms: 12, source: "a b" }))).toBe('T info  pull done name=deb ms=12 source="a b"');
  expect(formatLogLine("not json")).toBe("not json");
});

test("readLog: the last N lines, then what is appended, across rotations", async () => {
  const file = path.join(tmp, "c.log");
  const log = new JsonLinesLogger(file, { maxBytes: 400, keep: 1, now: clock });
  for (let i = 0; i < 3; i++) log.info(`old ${i}`);
  const seen: string[] = [];
  const ac = new AbortController();
  const reading = readLog(file, { follow: true, lines: 2, signal: ac.signal, pollMs: 10 }, (l) => seen.push((JSON.parse(l) as { msg: string }).msg));
  await Bun.sleep(30);
  expect(seen).toEqual(["old 1", "old 2"]);
  // Slower than the polls: at most one rotation between two looks (a follower that sleeps
  // through two rotations misses the file in between; the daemon rotates every 10 MiB).
  for (let i = 0; i < 10; i++) {
    log.info(`new ${i}`, { pad: "y".repeat(40) });
    await Bun.sleep(25);
  }
  const deadline = Date.now() + 3000;
  while (seen.length < 12 && Date.now() < deadline) await Bun.sleep(10);
  ac.abort();
  await reading;
  log.close();
  expect(fs.existsSync(`${file}.1`)).toBe(true);
  expect(seen.slice(2)).toEqual(Array.from({ length: 10 }, (_, i) => `new ${i}`));
});
