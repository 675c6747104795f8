// End to end: hand-made tars GNU tar itself never writes (children before their directory
// entries, duplicate members where the last wins, a file replaced by a symlink, GNU long-name
// members, ustar prefix names, base-256 ids, symlinks with a header mode other than 0777,
// modes that disagree with the access ACL) must give the same tree as GNU tar extracting
// them onto a kernel ext4. Starts: the banger CLI, GNU tar, mkfs.ext4, e2fsck, loop mounts.
import { afterAll } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { kernelReference } from "../helpers/kernel-compare.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { E2E_TOOLS, expectImageMatches, makeExt4Ok } from "./lib.ts";

const work = scratchDir("e2e-odd");
afterAll(() => rmSync(work, { recursive: true, force: true }));

function oddTar(): Uint8Array {
  const t = new TarBuilder();
  const m = 1_650_000_000;
  t.dir("./", { mode: 0o755, mtime: m });
  // Children first, their directories' own entries afterwards (mode/owner/mtime applied then).
  t.file("a/b/c/file", "deep first\n", { mtime: m + 1 });
  t.dir("a/b/c/", { mode: 0o750, uid: 7, gid: 8, mtime: m + 2 });
  t.dir("a/b/", { mode: 0o711, mtime: m + 3 });
  t.dir("a/", { mode: 0o755, uid: 1000, gid: 1000, mtime: m + 4 });
  // Duplicates: the last member wins.
  t.dir("etc/", { mode: 0o755, mtime: m });
  t.file("etc/config", "first version\n", { mode: 0o600, mtime: m + 5 });
  t.file("etc/config", "second, longer version\n", { mode: 0o644, uid: 5, mtime: m + 6 });
  t.file("etc/became-link", "a file first\n", { mtime: m });
  t.symlink("etc/became-link", "config", { mtime: m + 7 });
  t.dir("etc/", { mode: 0o700, mtime: m + 8 });
  // Name encodings: GNU long names (L/K members), ustar prefix, PAX path; base-256 ids.
  t.dir("names/", { mtime: m });
  t.file("names/" + "g".repeat(150), "gnu long name\n", { gnuLong: true, mtime: m + 9 });
  t.symlink("names/" + "k".repeat(120), "/" + "target/".repeat(30), { gnuLong: true, mtime: m + 10 });
  t.file("long-prefix-name.txt", "ustar prefix\n", { prefix: "names/" + "p".repeat(100), mtime: m + 11 });
  t.dir("placeholder/", { pax: { path: "names/" + "p".repeat(100) + "/" }, mtime: m + 12 });
  t.file("names/base256", "ids\n", { uid: 3_000_000_000, gid: 4_000_000_000, base256: true, mtime: m + 13 });
  t.dir("names/", { mode: 0o755, mtime: m + 14 });
  // Modes the kernel decides: a symlink is 0777 whatever its header says (also through a
  // hardlink to it), and where a mode and an access ACL disagree, extraction leaves the ACL's
  // USER_OBJ/MASK/OTHER equal to the mode, in both directions.
  t.dir("modes/", { mode: 0o755, mtime: m });
  t.file("modes/target", "t\n", { mtime: m });
  t.symlink("modes/link-0644", "target", { mode: 0o644, mtime: m + 15 });
  t.hardlink("modes/link-0644-hard", "modes/link-0644");
  t.symlink("modes/link-0600-abs", "/" + "long-target/".repeat(8), { mode: 0o600, mtime: m + 15 });
  t.file("modes/mode-narrower-than-acl", "n\n", { mode: 0o644, mtime: m + 16, pax: { "SCHILY.acl.access": "user::rw-,user:1000:rwx,group::r--,mask::rw-,other::r--" } });
  t.file("modes/mode-wider-than-acl", "w\n", { mode: 0o775, mtime: m + 17, pax: { "SCHILY.acl.access": "user::r--,user:1000:r--,group::r--,mask::r--,other::---" } });
  t.dir("modes/dir-acls", {
    mode: 0o750,
    mtime: m + 18,
    pax: { "SCHILY.acl.access": "user::rwx,group::r-x,group:100:rwx,mask::rwx,other::r-x", "SCHILY.acl.default": "user::rwx,user:7:rw-,group::r-x,mask::rwx,other::---" },
  });
  t.dir("modes/", { mode: 0o755, mtime: m + 19 });
  return t.end();
}

testWith({ tools: E2E_TOOLS, root: true }, "odd-order, duplicate and long-name members: same tree as GNU tar's extraction", async () => {
  const tar = join(work, "odd.tar");
  writeFileSync(tar, oddTar());
  const image = join(work, "odd.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", image, "--size", "64M"]);
  await expectImageMatches(image, await kernelReference(tar));
}, 120_000);
