// The oracles of the `image pull` tests, checked on their own (no banger code involved):
// umoci's unpack of the pull fixture follows the OCI merge rules written down in
// test/helpers/pull-fixtures.ts; umoci's unpack of the base layer alone equals what GNU tar
// extracts onto a kernel-made ext4 (so umoci keeps every piece of metadata the comparison
// looks at); the comparison reports each kind of difference; the skopeo-made docker-archive and
// the registry push carry the same image; the mount-and-compare path gives no difference for an
// ext4 holding umoci's own tree. Starts: umoci, skopeo, GNU tar + loop mount (root),
// Debian's docker-registry on 127.0.0.1.
import { afterAll, expect } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { kernelReference, type Snapshot } from "../helpers/kernel-compare.ts";
import { makeLayer, sha256 } from "../helpers/oci-images.ts";
import { runOk, scratchDir } from "../helpers/oracles.ts";
import { AMD64_CONFIG, BINARY_XATTR, CAP_NET_RAW, imageWithConfig, LONG_GNU_NAME, LONG_LINK_TARGET, LONG_PAX_NAME, pullFixture, pushPullFixture, skopeoDockerArchive, sparseish, writePullFixtureLayout, writeUmociLayout } from "../helpers/pull-fixtures.ts";
import { startRegistry } from "../helpers/registry.ts";
import { compareImageWithUmoci, diffAgainstUmoci, FIXTURE_IMPLIED_DIRS, umociFixtureSnapshot, umociSnapshotOf, umociUnpack } from "../helpers/umoci-oracle.ts";
import { makeExt4Ok } from "./lib.ts";

const work = scratchDir("pull-oracle");
afterAll(() => rmSync(work, { recursive: true, force: true }));

const UMOCI = { tools: ["umoci", "getfattr"], root: true };
const hex = (b: Uint8Array | string) => Buffer.from(b).toString("hex");
const fileDigest = (bytes: Uint8Array | string) => {
  // The snapshot's content digest: sha256 over (u64 LE block index, block) of non-zero 4 KiB blocks.
  const b = Buffer.from(bytes);
  const h = new Bun.CryptoHasher("sha256");
  const idx = Buffer.alloc(8);
  for (let off = 0; off < b.length; off += 4096) {
    const blk = b.subarray(off, Math.min(off + 4096, b.length));
    if (blk.every((x) => x === 0)) continue;
    idx.writeBigUInt64LE(BigInt(off / 4096));
    h.update(idx);
    h.update(blk);
  }
  return h.digest("hex");
};

testWith(UMOCI, "umoci's unpack of the pull fixture follows the OCI merge rules", () => {
  const s = umociFixtureSnapshot();
  const e = (p: string) => {
    const x = s.get(p);
    if (!x) throw new Error(`${p} missing from umoci's tree`);
    return x;
  };
  const content = (p: string, text: string) => expect({ p, sha: e(p).sha256, size: e(p).size }).toEqual({ p, sha: fileDigest(text), size: BigInt(Buffer.byteLength(text)) });
  // Whiteouts hide lower entries (a file; a dir with its subtree), never same-layer ones.
  for (const gone of ["/gone/file", "/gone-dir", "/gone-dir/a", "/gone-dir/sub/b", "/t/f2d/child"]) expect(s.has(gone), gone).toBe(false);
  content("/gone/keep", "stays\n");
  content("/wl/a", "upper a\n");
  content("/wl/b", "upper b\n");
  // No marker is materialized.
  expect([...s.keys()].filter((p) => p.includes(".wh."))).toEqual([]);
  // Opaque markers, before and after the layer's own entries.
  expect([...s.keys()].filter((p) => p.startsWith("/opq/") || p.startsWith("/opq2/")).sort()).toEqual(["/opq/new1", "/opq2/new2"]);
  expect(e("/opq").mode).toBe(0o750);
  // Type changes.
  expect([e("/t/f2d").type, e("/t/d2f").type, e("/t/f2s").type, e("/t/s2f").type, e("/t/d2s").type, e("/t/s2d").type]).toEqual(["dir", "file", "symlink", "file", "symlink", "dir"]);
  expect(s.has("/t/d2f/child") || s.has("/t/d2s/child")).toBe(false);
  expect([e("/t/f2s").linkTarget, e("/t/d2s").linkTarget]).toEqual(["../etc/hostname", "/usr"]);
  content("/t/s2d/inner", "inside the new dir\n");
  content("/t/f2d/keep", "child that stays\n");
  // Dir over dir: new metadata, old children kept.
  expect(e("/meta")).toMatchObject({ mode: 0o700, uid: 5, gid: 6, xattrs: { "user.meta": hex("v") } });
  expect(e("/meta").mtimeNsec).toBe(777);
  content("/meta/keep", "kept under a re-declared dir\n");
  expect(e("/etc").mode).toBe(0o751);
  expect([e("/etc").mtimeNsec, e("/etc/motd").mtimeNsec]).toEqual([42, 1]);
  // Hardlinks: same layer, lower layer, to a file an upper layer made; one broken by replacement.
  expect([e("/usr/a-link").inodeGroup, e("/usr/a").nlink]).toEqual(["/usr/a", 2]);
  expect([e("/lib/base.so").inodeGroup, e("/lib/base-link").inodeGroup, e("/lib/base.so").nlink]).toEqual(["/lib/base-link", "/lib/base-link", 2]);
  expect([e("/lib/s2f-link").inodeGroup, e("/t/s2f").inodeGroup, e("/t/s2f").nlink]).toEqual(["/lib/s2f-link", "/lib/s2f-link", 2]);
  expect([e("/share/x").nlink, e("/share/x-link").nlink]).toEqual([1, 1]);
  content("/share/x", "x before the link was broken\n");
  content("/share/x-link", "a new file now\n");
  // Implied parents.
  for (const d of FIXTURE_IMPLIED_DIRS) expect(e(d)).toMatchObject({ type: "dir", mode: 0o755, uid: 0, gid: 0 });
  // Symlinked parents resolve inside the root; the symlinks stay.
  for (const f of ["via-link", "via-abs", "via-ups"]) expect(e(`/etc/${f}`).type).toBe("file");
  expect([e("/link-to-dir").linkTarget, e("/abs-link").linkTarget, e("/ups").linkTarget]).toEqual(["etc", "/etc", "../../../etc"]);
  // Member kinds and metadata.
  expect(e("/bin/ping")).toMatchObject({ mode: 0o755, xattrs: { "security.capability": hex(CAP_NET_RAW) } });
  expect(e("/bin/ping").mtimeNsec).toBe(123456789);
  expect(e("/home/user/.profile")).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000, xattrs: { "user.comment": hex("hello"), "user.binary": hex(BINARY_XATTR) } });
  expect([e("/bin/su").mode, e("/bin/sgid").mode, e("/bin/sgid").gid, e("/bin/noperm").mode, e("/tmp").mode]).toEqual([0o4755, 0o2710, 5, 0, 0o1777]);
  expect(e("/dev/null")).toMatchObject({ type: "chardev", rdevMajor: 1, rdevMinor: 3, mode: 0o666 });
  expect(e("/dev/loop0")).toMatchObject({ type: "blockdev", rdevMajor: 7, rdevMinor: 0, gid: 6 });
  expect(e("/dev/big")).toMatchObject({ type: "chardev", rdevMajor: 300, rdevMinor: 70000 });
  expect(e("/run/initctl").type).toBe("fifo");
  expect(e("/var/sparse")).toMatchObject({ size: BigInt(sparseish().length), sha256: fileDigest(sparseish()) });
  content("/" + LONG_PAX_NAME, "long name via PAX path\n");
  content("/" + LONG_GNU_NAME, "long name via GNU L\n");
  expect(e("/usr/share/longlink").linkTarget).toBe(LONG_LINK_TARGET);
  // The root takes the `./` entry's metadata (its mtime: see umoci-oracle.ts).
  expect(e("/")).toMatchObject({ type: "dir", mode: 0o755, uid: 0, gid: 0 });
});

testWith({ tools: ["umoci", "getfattr", "mkfs.ext4", "mount", "umount", "losetup", "tar"], root: true }, "umoci's unpack of the base layer equals GNU tar's extraction onto a kernel ext4", async () => {
  const f = pullFixture();
  const base = f.amd64.layers[0]!;
  const dir = join(work, "base-only");
  mkdirSync(dir);
  const layout = join(dir, "layout");
  // Uncompressed here on purpose: umoci's handling of plain tar layers is checked too.
  const img = imageWithConfig([makeLayer(base.tar, "none")], { os: "linux", architecture: "amd64" }, AMD64_CONFIG);
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const [d, b] of [...img.blobs, [img.manifestDigest, img.manifest] as const]) writeFileSync(join(layout, "blobs", "sha256", d.slice(7)), b);
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, annotations: { "org.opencontainers.image.ref.name": "base" } }] }));
  const umoci = umociSnapshotOf(layout, "base");
  const tarPath = join(dir, "layer0.tar");
  writeFileSync(tarPath, base.tar);
  const gnu = await kernelReference(tarPath);
  // GNU tar's tree sits on a kernel ext4 (with lost+found), like a pulled image; no implied
  // parents in this layer, so the root's mtime is compared too.
  expect(diffAgainstUmoci(gnu, umoci, { impliedDirs: [] })).toEqual([]);
  expect(umoci.get("/")!.mtimeNsec).toBe(500_000_000);
}, 60_000);

testWith(UMOCI, "the comparison reports each kind of difference, and allows only the documented ones", () => {
  const ref = umociFixtureSnapshot();
  const withLostFound = (s: Snapshot): Snapshot => {
    const c: Snapshot = new Map([...s].map(([p, e]) => [p, { ...e, xattrs: { ...e.xattrs } }]));
    c.set("/lost+found", { type: "dir", mode: 0o700, uid: 0, gid: 0, nlink: 2, xattrs: {}, inodeGroup: "/lost+found", mtimeSec: 0n, mtimeNsec: 0 });
    c.get("/")!.nlink += 1;
    return c;
  };
  expect(diffAgainstUmoci(withLostFound(ref), ref)).toEqual([]);
  // Allowed: implied parents' mtimes and the root's (their holder).
  const allowed = withLostFound(ref);
  allowed.get("/deep/implied")!.mtimeSec = 0n;
  allowed.get("/")!.mtimeNsec = 1;
  expect(diffAgainstUmoci(allowed, ref)).toEqual([]);
  // Each mutation must be reported.
  const mutations: [string, (s: Snapshot) => void, RegExp][] = [
    ["missing lost+found", (s) => s.delete("/lost+found"), /lost\+found: missing/],
    ["extra file", (s) => s.set("/gone/file", { ...s.get("/gone/keep")!, inodeGroup: "/gone/file" }), /\/gone\/file: only in pulled/],
    ["missing file", (s) => s.delete("/wl/a"), /\/wl\/a: only in umoci/],
    ["mode", (s) => (s.get("/bin/su")!.mode = 0o755), /\/bin\/su: mode/],
    ["owner", (s) => (s.get("/home/user")!.uid = 0), /\/home\/user: uid/],
    ["content", (s) => (s.get("/etc/hostname")!.sha256 = "0".repeat(64)), /\/etc\/hostname: sha256/],
    ["link target", (s) => (s.get("/ups")!.linkTarget = "/etc"), /\/ups: linkTarget/],
    ["rdev", (s) => (s.get("/dev/big")!.rdevMinor = 1), /\/dev\/big: rdevMinor/],
    ["xattr", (s) => delete s.get("/bin/ping")!.xattrs["security.capability"], /\/bin\/ping: xattr security.capability only in umoci/],
    ["hardlink", (s) => (s.get("/lib/base.so")!.inodeGroup = "/lib/base.so"), /\/lib\/base.so: inodeGroup/],
    ["file nlink", (s) => (s.get("/share/x")!.nlink = 2), /\/share\/x: nlink/],
    ["mtime nanoseconds", (s) => (s.get("/bin/ping")!.mtimeNsec = 0), /\/bin\/ping: mtime/],
    ["dir mtime", (s) => (s.get("/etc")!.mtimeSec += 1n), /\/etc: mtime/],
    ["implied parent mode", (s) => (s.get("/deep")!.mode = 0o700), /\/deep: mode/],
    ["type", (s) => (s.get("/t/s2d")!.type = "file"), /\/t\/s2d: type/],
  ];
  for (const [what, mutate, want] of mutations) {
    const ours = withLostFound(ref);
    mutate(ours);
    const diffs = diffAgainstUmoci(ours, ref);
    expect({ what, diffs: diffs.join("\n") }).toEqual({ what, diffs: expect.stringMatching(want) });
  }
});

testWith({ tools: ["skopeo", "tar"] }, "skopeo's docker-archive of the fixture holds the same config and layer tars", () => {
  const f = pullFixture();
  const dir = join(work, "skopeo");
  mkdirSync(dir);
  writePullFixtureLayout(join(dir, "oci"));
  const archive = skopeoDockerArchive(join(dir, "oci"), "amd64", join(dir, "image.tar"));
  const out = join(dir, "x");
  mkdirSync(out);
  runOk(["tar", "-xf", archive, "-C", out]);
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  expect(manifest.length).toBe(1);
  expect(manifest[0]!.RepoTags).toEqual(["docker.io/banger-test/app:latest"]);
  expect(sha256(readFileSync(join(out, manifest[0]!.Config)))).toBe(f.amd64.configDigest);
  // Each layer (skopeo writes <id>/layer.tar as a symlink to the tar) hashes to its diff_id.
  expect(manifest[0]!.Layers.map((l) => sha256(readFileSync(join(out, l))))).toEqual(f.amd64.layers.map((l) => l.diffId));
  // The layout's "multi" tag is an index over both platforms; "amd64" names the image.
  const index = JSON.parse(readFileSync(join(dir, "oci", "index.json"), "utf8"));
  expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([f.index.digest, f.amd64.manifestDigest]);
}, 30_000);

testWith({ tools: ["skopeo", "docker-registry"] }, "the registry push: a real client (skopeo) resolves the index by platform past the decoy", async () => {
  const f = pullFixture();
  const reg = await startRegistry();
  try {
    await pushPullFixture(reg.url, "pull/app", "v1");
    // skopeo inspect reports the tag's (index) digest, and the chosen image's layers.
    const chosen = (arch: string) => {
      const r = runOk(["skopeo", "--insecure-policy", "--override-os", "linux", "--override-arch", arch, "inspect", "--tls-verify=false", `docker://${reg.host}/pull/app:v1`]);
      const j = JSON.parse(r.stdout) as { Digest: string; Architecture: string; Layers: string[] };
      return { digest: j.Digest, arch: j.Architecture, layers: j.Layers };
    };
    expect(chosen("amd64")).toEqual({ digest: f.index.digest, arch: "amd64", layers: f.amd64.layers.map((l) => l.digest) });
    expect(chosen("arm64")).toEqual({ digest: f.index.digest, arch: "arm64", layers: f.arm64.layers.map((l) => l.digest) });
    const raw = runOk(["skopeo", "inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/pull/app:v1`]).stdout;
    const idx = JSON.parse(raw) as { manifests: { platform: { os: string; architecture: string } }[] };
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(["unknown/unknown", "linux/arm64", "linux/amd64"]);
  } finally {
    await reg.stop();
  }
}, 30_000);

testWith({ tools: ["umoci", "getfattr", "tar", "mount", "umount", "losetup"], root: true }, "the mount-and-compare path: umoci's tree, tarred by GNU tar and written by make-ext4, compares clean", async () => {
  // Exercises compareImageWithUmoci as the pull tests use it (loop mount of an ext4 file,
  // lost+found, directory link counts) on an image whose tree is umoci's by construction.
  const dir = join(work, "roundtrip");
  mkdirSync(dir);
  const layout = writeUmociLayout(join(dir, "layout"));
  const rootfs = umociUnpack(layout, "amd64", join(dir, "bundle"));
  const tarPath = join(dir, "rootfs.tar");
  runOk(["tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-cpf", tarPath, "-C", rootfs, "."]);
  const image = join(dir, "rootfs.ext4");
  await makeExt4Ok(["--rootfs-tar", tarPath, "--out", image]);
  expect(await compareImageWithUmoci(image, umociFixtureSnapshot())).toEqual([]);
}, 60_000);
