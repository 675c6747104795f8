// flock(2) through FFI: one holder at a time (even two opens in one process), released on
// release(), and released by the kernel when the holding process is killed with SIGKILL.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileLock, isLocked } from "../../src/io/flock.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-flock-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("one holder at a time; release frees it; the file stays", () => {
  const file = path.join(tmp, "a.lock");
  expect(isLocked(file)).toBe(false);
  expect(fs.existsSync(file)).toBe(false); // asking does not create it
  const first = FileLock.tryAcquire(file)!;
  expect(first).not.toBeNull();
  expect((fs.statSync(file).mode & 0o777).toString(8)).toBe("600");
  expect(FileLock.tryAcquire(file)).toBeNull();
  expect(isLocked(file)).toBe(true);
  first.describe("pid 1\n");
  first.describe("pid 2\n");
  expect(fs.readFileSync(file, "utf8")).toBe("pid 2\n");
  first.release();
  expect(isLocked(file)).toBe(false);
  const again = FileLock.tryAcquire(file)!;
  expect(again).not.toBeNull();
  again.release();
  expect(fs.existsSync(file)).toBe(true);
});

test("acquire waits for the holder, or gives up after its timeout", async () => {
  const file = path.join(tmp, "b.lock");
  const held = FileLock.tryAcquire(file)!;
  const t0 = Date.now();
  expect(await FileLock.acquire(file, { timeoutMs: 100 })).toBeNull();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  setTimeout(() => held.release(), 50);
  const got = await FileLock.acquire(file, { timeoutMs: 5000 });
  expect(got).not.toBeNull();
  got!.release();
});

test("a holder killed with SIGKILL releases the lock", async () => {
  const file = path.join(tmp, "c.lock");
  const script = `import { FileLock } from ${JSON.stringify(path.resolve(import.meta.dir, "../../src/io/flock.ts"))};
    const l = FileLock.tryAcquire(${JSON.stringify(file)}); console.log(l ? "held" : "busy"); setInterval(() => {}, 1000);`;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  expect(new TextDecoder().decode(value)).toBe("held\n");
  expect(isLocked(file)).toBe(true);
  child.kill("SIGKILL");
  await child.exited;
  expect(isLocked(file)).toBe(false);
});
