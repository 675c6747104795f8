// Tars made by GNU tar (pax, gnu, ustar, v7) from a real directory, loaded and compared with
// that directory entry by entry: kinds, modes, owners, mtimes (nanoseconds for PAX), content
// read back through the ByteSource, zero runs, link targets, devices, hardlinks, xattrs, ACLs.

import { afterAll, beforeAll, describe, expect } from "bun:test";
import { chmodSync, chownSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadRootfsTar } from "../../src/tar/index.ts";
import { testWith } from "../helpers/env.ts";
import { expectTreeMatchesDir, getfattr, nodeAt, removeDir, run, tempDir } from "./util.ts";

const NEEDS = { tools: ["tar", "setfattr", "getfattr", "setfacl", "mknod", "touch"], root: true };

let work = "";

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x & 0xff) | 1; // never zero
  }
  return out;
}

interface FixtureOptions {
  longNames: boolean;
  devices: boolean;
  negativeTimes: boolean;
  bigIds: boolean;
  xattrs: boolean;
}

/** Populates `dir` with every kind of entry the format can carry. */
function makeFixture(dir: string, o: FixtureOptions): void {
  mkdirSync(dir);
  const p = (rel: string) => join(dir, rel);
  mkdirSync(p("etc"));
  writeFileSync(p("etc/hostname"), "banger\n");
  chownSync(p("etc/hostname"), 1234, 5678);
  mkdirSync(p("usr/bin"), { recursive: true });
  // data, a zero hole of 50 blocks, data with a short tail: runs [0,100, 150,7]
  const tool = new Uint8Array(4096 * 153 + 12345);
  tool.set(pattern(4096 * 100, 1), 0);
  tool.set(pattern(4096 * 3 + 12345, 2), 4096 * 150);
  writeFileSync(p("usr/bin/tool"), tool);
  chmodSync(p("usr/bin/tool"), 0o4755);
  linkSync(p("usr/bin/tool"), p("usr/bin/tool-link"));
  writeFileSync(p("zeros"), new Uint8Array(1 << 20)); // runs []
  const tail = new Uint8Array(4096 + 100);
  tail.set(pattern(4096, 3));
  writeFileSync(p("zero-tail"), tail); // runs [0,1]
  const head = new Uint8Array(4096 * 2 + 1);
  head[4096 * 2] = 7;
  writeFileSync(p("zero-head"), head); // runs [2,1]
  writeFileSync(p("small"), pattern(700, 4));
  writeFileSync(p("empty"), "");
  mkdirSync(p("tmp"));
  chmodSync(p("tmp"), 0o1777);
  symlinkSync("hostname", p("etc/link"));
  symlinkSync("/usr/bin/tool", p("abs-link"));
  symlinkSync("dangling/target", p("dangling"));
  if (o.devices) {
    run(["mknod", p("fifo"), "p"]);
    run(["mknod", p("null"), "c", "1", "3"]);
    run(["mknod", p("sda1"), "b", "8", "1"]);
    run(["mknod", p("bigdev"), "c", "300", "70000"]);
  }
  if (o.longNames) {
    const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(120)}`;
    mkdirSync(p(long), { recursive: true });
    writeFileSync(p(`${long}/${"g".repeat(200)}`), "deep\n");
    symlinkSync("t".repeat(150), p("long-target"));
    linkSync(p(`${long}/${"g".repeat(200)}`), p("link-to-long"));
    writeFileSync(Buffer.from(`${dir}/caf\xe9-\xff-latin1`, "latin1"), "bytes\n");
    writeFileSync(p("ünïcödé"), "utf8\n");
  }
  if (o.bigIds) chownSync(p("small"), 3_000_000, 4_000_000);
  run(["touch", "-h", "-d", "2021-02-03 04:05:06.123456789 UTC", p("etc/hostname")]);
  run(["touch", "-h", "-d", "2100-01-01 00:00:01.5 UTC", p("small")]);
  if (o.negativeTimes) {
    run(["touch", "-h", "-d", "1960-05-06 07:08:09.25 UTC", p("zeros")]);
    run(["touch", "-h", "-d", "1969-12-31 23:59:59.75 UTC", p("zero-tail")]);
  }
  if (o.xattrs) {
    run(["setfattr", "-n", "user.bin", "-v", "0xff00fe80", p("etc/hostname")]);
    run(["setfattr", "-n", "user.empty", "-v", '""', p("etc/hostname")]);
    run(["setfattr", "-n", "trusted.t", "-v", "0x00", p("usr/bin")]);
    run(["setfattr", "-n", "security.capability", "-v", "0x0100000200200000000000000000000000000000", p("usr/bin/tool")]);
    run(["setfacl", "-m", "u:1000:rw-,g:100:r--,u:0:r", p("small")]);
    run(["setfacl", "-d", "-m", "u:1000:rwx", p("tmp")]);
  }
  utimesSync(p("etc"), 1_600_000_000, 1_600_000_000);
  chmodSync(dir, 0o750);
}

beforeAll(() => {
  work = tempDir("gnutar");
});
afterAll(() => removeDir(work));

describe("GNU tar archives", () => {
  const cases: Array<{ format: string; opts: FixtureOptions; flags: string[] }> = [
    { format: "pax", opts: { longNames: true, devices: true, negativeTimes: true, bigIds: true, xattrs: true }, flags: ["--xattrs", "--xattrs-include=*", "--acls"] },
    { format: "gnu", opts: { longNames: true, devices: true, negativeTimes: true, bigIds: true, xattrs: false }, flags: [] },
    { format: "ustar", opts: { longNames: false, devices: true, negativeTimes: false, bigIds: false, xattrs: false }, flags: [] },
    { format: "v7", opts: { longNames: false, devices: false, negativeTimes: false, bigIds: false, xattrs: false }, flags: [] },
  ];
  for (const c of cases) {
    testWith(NEEDS, `--format=${c.format}: tree equals the source directory`, async () => {
      const src = join(work, `src-${c.format}`);
      makeFixture(src, c.opts);
      const tarPath = join(work, `${c.format}.tar`);
      run(["tar", "-C", src, `--format=${c.format}`, ...c.flags, "-cf", tarPath, "."]);
      const loaded = await loadRootfsTar(tarPath, { spoolNear: join(work, "out.img") });
      try {
        const n = expectTreeMatchesDir(loaded.root, loaded.sources, src, {
          nanoseconds: c.format === "pax",
          xattrs: c.opts.xattrs ? getfattr : undefined,
        });
        expect(n).toBeGreaterThan(15);
        const tool = nodeAt(loaded.root, "usr/bin/tool")!;
        expect([...tool.data!.runs!]).toEqual([0, 100, 150, 7]);
        expect(nodeAt(loaded.root, "usr/bin/tool-link")).toBe(tool);
        expect(nodeAt(loaded.root, "zeros")!.data!.runs!.length).toBe(0);
        expect(nodeAt(loaded.root, "small")!.data!.runs).toBeUndefined();
        expect(loaded.identity.length).toBe(32);
      } finally {
        loaded.cleanup();
        loaded.cleanup(); // idempotent
      }
    }, 30_000);
  }

  testWith(NEEDS, "--acls without --xattrs: text ACLs become binary system.posix_acl_* xattrs", async () => {
    const src = join(work, "src-acl");
    mkdirSync(src);
    writeFileSync(join(src, "f"), "x");
    run(["setfacl", "-m", "u:1000:rw-,g:100:r--,u:0:r,m::rwx", join(src, "f")]);
    mkdirSync(join(src, "d"));
    run(["setfacl", "-m", "u:4321:r-x", "-d", "-m", "u:1000:rwx,g:4444:r", join(src, "d")]);
    const tarPath = join(work, "acl.tar");
    run(["tar", "-C", src, "--format=pax", "--acls", "-cf", tarPath, "f", "d"]);
    const loaded = await loadRootfsTar(tarPath, { spoolNear: join(work, "out.img") });
    try {
      for (const name of ["f", "d"]) {
        const node = nodeAt(loaded.root, name)!;
        const want = getfattr(join(src, name));
        for (const key of ["system.posix_acl_access", "system.posix_acl_default"]) {
          const w = want.get(key);
          const g = node.xattrs.get(key);
          expect({ name, key, value: g && Buffer.from(g).toString("hex") }).toEqual({ name, key, value: w && Buffer.from(w).toString("hex") });
        }
      }
    } finally {
      loaded.cleanup();
    }
  }, 30_000);

  testWith(NEEDS, "same tar ⇒ same identity; a different header ⇒ different identity", async () => {
    const src = join(work, "src-id");
    mkdirSync(src);
    writeFileSync(join(src, "a"), "1");
    utimesSync(join(src, "a"), 1000, 1000);
    const t1 = join(work, "id1.tar");
    const t2 = join(work, "id2.tar");
    run(["tar", "-C", src, "--format=gnu", "-cf", t1, "a"]);
    run(["cp", t1, join(work, "id1-copy.tar")]);
    utimesSync(join(src, "a"), 1001, 1001);
    run(["tar", "-C", src, "--format=gnu", "-cf", t2, "a"]);
    const ids: string[] = [];
    for (const t of [t1, join(work, "id1-copy.tar"), t2]) {
      const l = await loadRootfsTar(t, { spoolNear: join(work, "out.img") });
      ids.push(Buffer.from(l.identity).toString("hex"));
      l.cleanup();
    }
    expect(ids[0]).toBe(ids[1]!);
    expect(ids[0]).not.toBe(ids[2]!);
  }, 30_000);
});
