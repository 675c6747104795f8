// End to end on a real root filesystem: the Debian bookworm rootfs tar (mmdebstrap, ~12k
// entries: setuid sudo, ping's file capability, ACLs on /var/log/journal, device nodes,
// hardlinks) through `banger internal make-ext4`, then e2fsck (check + preen-changes-nothing),
// debugfs spot checks, and a kernel mount compared entry for entry with what GNU tar extracts
// onto a mkfs.ext4 filesystem. Starts: mmdebstrap (first run only, cached in
// $BANGER_FIXTURE_CACHE or /var/tmp/banger-fixtures), the banger CLI, e2fsprogs, loop mounts.
import { afterAll, expect } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { debugfsEaList, debugfsHtree, debugfsStat, scratchDir } from "../helpers/oracles.ts";
import { kernelReference } from "../helpers/kernel-compare.ts";
import { debianRootfsTar } from "../helpers/debian.ts";
import { E2E_TOOLS, expectImageMatches, makeExt4Ok } from "./lib.ts";

const work = scratchDir("e2e-debian");
afterAll(() => rmSync(work, { recursive: true, force: true }));

testWith({ tools: E2E_TOOLS, root: true }, "Debian rootfs: e2fsck clean, debugfs checks, kernel tree equals GNU tar's", async () => {
  const tar = await debianRootfsTar();
  const image = join(work, "debian.img");
  const run = await makeExt4Ok(["--rootfs-tar", tar, "--out", image]);
  console.error(`make-ext4 on the Debian rootfs: ${(run.ms / 1000).toFixed(1)} s; ${run.stderr.trim()}`);

  const sudo = debugfsStat(image, "/usr/bin/sudo");
  expect(sudo.mode).toBe(0o4755);
  expect([sudo.uid, sudo.gid]).toEqual([0, 0]);
  expect(debugfsEaList(image, "/usr/bin/ping").get("security.capability")?.length).toBe(20);
  const journal = debugfsEaList(image, "/var/log/journal");
  expect(journal.has("system.posix_acl_default")).toBe(true);
  expect(debugfsHtree(image, "/var/lib/dpkg/info").entries.length).toBeGreaterThan(700);
  expect(debugfsHtree(image, "/usr/bin").entries.length).toBeGreaterThan(400);

  await expectImageMatches(image, await kernelReference(tar));
}, 600_000);
