// The image the `banger image pull` end-to-end tests pull: three layers built in memory with the
// test tar writer (every member kind, PAX xattrs incl. security.capability, nanosecond mtimes,
// long names, hardlinks, devices), one gzip, one zstd and one uncompressed, whose entries
// exercise every OCI merge rule (see oci-notes.md). Plus a decoy arm64 image with other content
// and an `unknown/unknown` attestation entry, in a multi-arch index; and writers for the same
// image as a registry push, an `oci:` layout dir and a `docker-archive:` made by the real skopeo.
//
// What the merged tree must look like is written next to each rule (EXPECT comments), and
// test/e2e/pull-oracle.test.ts checks umoci's unpack against the rules that are easy to state.
import fs from "node:fs";
import path from "node:path";
import { makeIndex, makeLayer, sha256, type TestImage, type TestLayer } from "./oci-images.ts";
import { runOk } from "./oracles.ts";
import { pushIndex, type PushAuth } from "./registry.ts";
import { TarBuilder, type EntryOptions } from "./tarwriter.ts";

const enc = new TextEncoder();

/** Base mtime of the fixture's entries (2023-11-14); each entry adds its own offset. */
const T0 = 1_700_000_000;
let tick = 0;
/** Options with a distinct whole-second mtime, so a wrong mtime source shows. */
function at(extra: EntryOptions = {}): EntryOptions {
  return { mtime: T0 + ++tick * 7, ...extra };
}
/** A PAX mtime with nanoseconds (and any other PAX records). */
function paxAt(nanos: string, records: Record<string, string | Uint8Array> = {}, extra: EntryOptions = {}): EntryOptions {
  return { mtime: T0, pax: { mtime: `${T0 + ++tick * 7}.${nanos}`, ...records }, ...extra };
}

/** security.capability v2: effective, permitted = CAP_NET_RAW (bit 13). */
export const CAP_NET_RAW = new Uint8Array([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/** A user xattr value with bytes that are not text. */
export const BINARY_XATTR = new Uint8Array([0x00, 0xff, 0x10, 0x80, 0x0a, 0x3d]);

export const LONG_PAX_NAME = "usr/share/" + "a".repeat(120);
export const LONG_GNU_DIR = "usr/share/" + "b".repeat(150);
export const LONG_GNU_NAME = LONG_GNU_DIR + "/" + "c".repeat(200);
export const LONG_LINK_TARGET = "/" + "x".repeat(90) + "/" + "y".repeat(200);

/** 1 MiB + 5 bytes: "head" at 0, "tail" at the end, zeros between (whole 4 KiB zero blocks). */
export function sparseish(): Uint8Array {
  const b = new Uint8Array((1 << 20) + 5);
  b.set(enc.encode("head"), 0);
  b.set(enc.encode("tail\n"), b.length - 5);
  return b;
}

function layer0(): Uint8Array {
  const t = new TarBuilder();
  t.dir("./", paxAt("500000000"));
  t.dir("etc/", at());
  t.file("etc/hostname", "banger-test\n", at());
  t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n", at());
  t.file("etc/shadow", "root:*:19000:0:99999:7:::\n", at({ mode: 0o640, gid: 42 }));
  t.dir("bin/", at());
  t.file("bin/su", "#!/bin/sh\necho su\n", at({ mode: 0o4755 }));
  t.file("bin/ping", "ping binary\n", paxAt("123456789", { "SCHILY.xattr.security.capability": CAP_NET_RAW }, { mode: 0o755 }));
  t.file("bin/sgid", "setgid\n", at({ mode: 0o2710, gid: 5 }));
  t.file("bin/entry", "#!/bin/sh\nexec \"$@\"\n", at({ mode: 0o755 }));
  t.file("bin/noperm", "nobody may read me\n", at({ mode: 0o000 }));
  t.dir("tmp/", at({ mode: 0o1777 }));
  t.dir("home/", at());
  t.dir("home/user/", at({ mode: 0o700, uid: 1000, gid: 1000 }));
  t.file("home/user/.profile", "export PS1='$ '\n", paxAt("000000001", { "SCHILY.xattr.user.comment": "hello", "SCHILY.xattr.user.binary": BINARY_XATTR }, { mode: 0o600, uid: 1000, gid: 1000 }));
  t.dir("srv/", at({ uid: 1000, gid: 1000 }));
  t.dir("dev/", at());
  t.device("dev/null", "char", 1, 3, at({ mode: 0o666 }));
  t.device("dev/loop0", "block", 7, 0, at({ mode: 0o660, gid: 6 }));
  t.device("dev/big", "char", 300, 70000, at({ mode: 0o600 }));
  t.dir("run/", at());
  t.fifo("run/initctl", at({ mode: 0o600 }));
  t.dir("var/", at());
  t.file("var/sparse", sparseish(), paxAt("999999999"));
  t.dir("usr/", at());
  t.dir("usr/share/", at());
  t.file("placeholder-pax", "long name via PAX path\n", paxAt("250000000", { path: LONG_PAX_NAME }));
  t.dir(LONG_GNU_DIR, at({ gnuLong: true }));
  t.file(LONG_GNU_NAME, "long name via GNU L\n", at({ gnuLong: true }));
  t.symlink("usr/share/longlink", LONG_LINK_TARGET, at({ gnuLong: true }));
  t.file("usr/a", "shared by two names\n", at());
  t.hardlink("usr/a-link", "usr/a", at()); // EXPECT: same inode as usr/a, nlink 2
  t.dir("lib/", at());
  t.file("lib/base.so", "base library\n", at({ mode: 0o755 }));
  t.dir("share/", at());
  t.file("share/x", "x before the link was broken\n", at());
  t.hardlink("share/x-link", "share/x", at());
  // Whiteout targets.
  t.dir("gone/", at());
  t.file("gone/file", "whited out in layer 1\n", at());
  t.file("gone/keep", "stays\n", at());
  t.dir("gone-dir/", at());
  t.file("gone-dir/a", "a\n", at());
  t.dir("gone-dir/sub/", at());
  t.file("gone-dir/sub/b", "b\n", at());
  t.dir("wl/", at());
  t.file("wl/a", "lower a\n", at());
  t.file("wl/b", "lower b\n", at());
  // Opaque targets.
  t.dir("opq/", at());
  t.file("opq/old1", "old\n", at());
  t.dir("opq/olddir/", at());
  t.file("opq/olddir/x", "old x\n", at());
  t.dir("opq2/", at());
  t.file("opq2/old2", "old 2\n", at());
  // Type-change targets.
  t.dir("t/", at());
  t.file("t/f2d", "file becoming a dir\n", at());
  t.dir("t/d2f/", at());
  t.file("t/d2f/child", "goes with its dir\n", at());
  t.file("t/f2s", "file becoming a symlink\n", at());
  t.symlink("t/s2f", "nowhere", at());
  t.dir("t/d2s/", at());
  t.file("t/d2s/child", "goes with its dir\n", at());
  t.symlink("t/s2d", "elsewhere", at());
  // Dir over dir.
  t.dir("meta/", at({ mode: 0o755 }));
  t.file("meta/keep", "kept under a re-declared dir\n", at());
  // Symlinked parents: relative, absolute, and one that climbs above the root.
  t.symlink("link-to-dir", "etc", at());
  t.symlink("abs-link", "/etc", at());
  t.symlink("ups", "../../../etc", at());
  return t.end();
}

function layer1(): Uint8Array {
  const t = new TarBuilder();
  // Whiteouts of lower entries: a file, and a whole directory. EXPECT: gone/file and gone-dir/ absent.
  t.file("gone/.wh.file", "", at());
  t.file(".wh.gone-dir", "", at());
  // Whiteouts never hide entries of their own layer, whether the entry comes before or after.
  // EXPECT: wl/a = "upper a\n", wl/b = "upper b\n".
  t.file("wl/a", "upper a\n", at());
  t.file("wl/.wh.a", "", at());
  t.file("wl/.wh.b", "", at());
  t.file("wl/b", "upper b\n", at());
  // Opaque markers, before and after this layer's entries. EXPECT: opq/ = {new1}, opq2/ = {new2}.
  t.dir("opq/", at({ mode: 0o750 }));
  t.file("opq/.wh..wh..opq", "", at());
  t.file("opq/new1", "new 1\n", at());
  t.file("opq2/new2", "new 2\n", at());
  t.file("opq2/.wh..wh..opq", "", at());
  // Type changes. EXPECT: t/f2d dir with child, t/d2f file (its old child gone), t/f2s symlink,
  // t/s2f file, t/d2s symlink (its old child gone), t/s2d dir with inner.
  t.dir("t/f2d/", at({ mode: 0o711 }));
  t.file("t/f2d/child", "child of the new dir\n", at());
  t.file("t/f2d/keep", "child that stays\n", at());
  t.file("t/d2f", "dir became a file\n", at());
  t.symlink("t/f2s", "../etc/hostname", at());
  t.file("t/s2f", "symlink became a file\n", at({ mode: 0o600 }));
  t.symlink("t/d2s", "/usr", at());
  t.dir("t/s2d/", at());
  t.file("t/s2d/inner", "inside the new dir\n", at());
  // Dir over dir: new metadata, old children stay. EXPECT: meta 0700 5:6, xattr, meta/keep present.
  t.dir("meta/", paxAt("000000777", { "SCHILY.xattr.user.meta": "v" }, { mode: 0o700, uid: 5, gid: 6 }));
  // Hardlink to a lower layer's file. EXPECT: lib/base-link and lib/base.so one inode, nlink 2.
  t.hardlink("lib/base-link", "lib/base.so", at());
  // Replacing one name of a hardlinked pair breaks the link. EXPECT: share/x nlink 1, old content.
  t.file("share/x-link", "a new file now\n", at());
  // Implied parents. EXPECT: deep/, deep/implied/, deep/implied/dir/ exist as directories.
  t.file("deep/implied/dir/file", "under implied parents\n", at());
  // Members whose parent is a symlink: resolved inside the root. EXPECT: etc/via-link,
  // etc/via-abs, etc/via-ups; the three symlinks unchanged.
  t.file("link-to-dir/via-link", "through a relative symlink\n", at());
  t.file("abs-link/via-abs", "through an absolute symlink\n", at());
  t.file("ups/via-ups", "through a symlink climbing above the root\n", at());
  return t.end();
}

function layer2(): Uint8Array {
  const t = new TarBuilder();
  // Dir over dir again, on a dir with children from two layers. EXPECT: etc 0751, mtime below.
  t.dir("etc/", paxAt("000000042", {}, { mode: 0o751 }));
  t.file("etc/motd", "hello from layer 2\n", paxAt("000000001"));
  // Whiteout of an entry layer 1 made. EXPECT: t/f2d/child absent, t/f2d/keep present.
  t.file("t/f2d/.wh.child", "", at());
  // Hardlink to a file made by layer 1 (which replaced a symlink). EXPECT: one inode, nlink 2.
  t.hardlink("lib/s2f-link", "t/s2f", at());
  return t.end();
}

function decoyLayer(): Uint8Array {
  const t = new TarBuilder();
  t.dir("etc/", at());
  t.file("etc/arch", "arm64\n", at());
  t.dir("bin/", at());
  t.file("bin/decoy", "I am the arm64 image\n", at({ mode: 0o755 }));
  return t.end();
}

/** The image config fields the pull's --json record reports. */
export const AMD64_CONFIG = {
  Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
  Entrypoint: ["/bin/entry"],
  Cmd: ["--serve", "8080"],
  WorkingDir: "/srv",
  User: "1000:1000",
};

/** An image with a full config (oci-images.ts's makeImage sets only Env and Cmd). */
export function imageWithConfig(layers: TestLayer[], platform: { os: string; architecture: string; variant?: string }, config: Record<string, unknown>): TestImage {
  const configBytes = enc.encode(
    JSON.stringify({
      created: "2023-11-14T22:13:20Z",
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = sha256(configBytes);
  const mediaType = "application/vnd.oci.image.manifest.v1+json";
  const manifest = enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  const blobs = new Map<string, Uint8Array>([[configDigest, configBytes]]);
  for (const l of layers) blobs.set(l.digest, l.blob);
  return { layers, config: configBytes, configDigest, manifest, manifestDigest: sha256(manifest), mediaType, platform, blobs };
}

export interface PullFixture {
  /** The three-layer image: gzip, zstd, uncompressed. */
  amd64: TestImage;
  /** Decoy: other content, listed first in the index. */
  arm64: TestImage;
  attestation: TestImage;
  index: { bytes: Uint8Array; digest: string; mediaType: string };
}

let fixture: PullFixture | undefined;

/** Built once per process (the same bytes every time: no random data, fixed mtimes). */
export function pullFixture(): PullFixture {
  if (fixture) return fixture;
  tick = 0;
  const amd64 = imageWithConfig([makeLayer(layer0(), "gzip"), makeLayer(layer1(), "zstd"), makeLayer(layer2(), "none")], { os: "linux", architecture: "amd64" }, AMD64_CONFIG);
  const arm64 = imageWithConfig([makeLayer(decoyLayer(), "gzip")], { os: "linux", architecture: "arm64", variant: "v8" }, { Env: ["PATH=/bin"], Cmd: ["/bin/decoy"] });
  const attTar = new TarBuilder();
  attTar.file("intoto.json", '{"_type":"https://in-toto.io/Statement/v0.1"}', at());
  const attestation = imageWithConfig([makeLayer(attTar.end(), "none")], { os: "unknown", architecture: "unknown" }, {});
  // The decoy first: a puller that takes the first entry gets the wrong image.
  const index = makeIndex([arm64, amd64], { attestation });
  fixture = { amd64, arm64, attestation, index };
  return fixture;
}

/** Pushes the index (decoy, amd64, attestation) to a running registry under `tag`. */
export async function pushPullFixture(registryUrl: string, repo: string, tag: string, auth?: PushAuth): Promise<void> {
  const f = pullFixture();
  await pushIndex(registryUrl, repo, [f.arm64, f.amd64, f.attestation], f.index, tag, auth);
}

/** Tags written by writePullFixtureLayout. */
export const LAYOUT_TAGS = { index: "multi", amd64: "amd64" } as const;

/**
 * Writes an OCI image layout holding the index (tag "multi") and the amd64 manifest alone
 * (tag "amd64"; umoci unpacks by a tag that names one manifest).
 */
export function writePullFixtureLayout(dir: string): string {
  const f = pullFixture();
  fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const put = (digest: string, bytes: Uint8Array) => fs.writeFileSync(path.join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  for (const img of [f.amd64, f.arm64, f.attestation]) {
    put(img.manifestDigest, img.manifest);
    for (const [d, b] of img.blobs) put(d, b);
  }
  put(f.index.digest, f.index.bytes);
  const ref = (tag: string) => ({ "org.opencontainers.image.ref.name": tag });
  fs.writeFileSync(
    path.join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: f.index.mediaType, digest: f.index.digest, size: f.index.bytes.length, annotations: ref(LAYOUT_TAGS.index) },
        { mediaType: f.amd64.mediaType, digest: f.amd64.manifestDigest, size: f.amd64.manifest.length, annotations: ref(LAYOUT_TAGS.amd64) },
      ],
    }),
  );
  return dir;
}

/**
 * A `docker save`-style archive of the amd64 image made by the real skopeo. skopeo 1.9 refuses to
 * put a zstd layer into a Docker image ("zstd compression is not supported for docker images"),
 * so it goes in two real skopeo steps: oci: -> dir: with --dest-decompress (plain tar layers,
 * same diff_ids, same config), then dir: -> docker-archive:. The archive skopeo writes holds
 * the layers as <diffid>.tar with <id>/layer.tar symlinks to them.
 */
export function skopeoDockerArchive(ociDir: string, tag: string, file: string, repoTag = "banger-test/app:latest"): string {
  const tmp = fs.mkdtempSync(path.join(path.dirname(file), ".skopeo-dir-"));
  try {
    runOk(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-decompress", `oci:${ociDir}:${tag}`, `dir:${tmp}`]);
    runOk(["skopeo", "--insecure-policy", "copy", "--quiet", `dir:${tmp}`, `docker-archive:${file}:${repoTag}`]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return file;
}

/**
 * The amd64 image with its zstd layer gzip-compressed instead (same tar bytes, same diff_ids,
 * same config), as an OCI layout tagged `tag`: umoci 0.4.7 refuses tar+zstd layers ("blob is
 * not correct mediatype"), and the compression cannot change what a layer unpacks to.
 */
export function writeUmociLayout(dir: string, tag = "amd64"): string {
  const f = pullFixture();
  const layers = f.amd64.layers.map((l) => (l.compression === "zstd" ? makeLayer(l.tar, "gzip") : l));
  const img = imageWithConfig(layers, f.amd64.platform, AMD64_CONFIG);
  if (img.configDigest !== f.amd64.configDigest) throw new Error("umoci layout: the config changed with the compression");
  fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const put = (digest: string, bytes: Uint8Array) => fs.writeFileSync(path.join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  put(img.manifestDigest, img.manifest);
  for (const [d, b] of img.blobs) put(d, b);
  fs.writeFileSync(
    path.join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, annotations: { "org.opencontainers.image.ref.name": tag } }] }),
  );
  return dir;
}
