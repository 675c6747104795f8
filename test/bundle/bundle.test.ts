// Image bundles (src/bundle): make-bundle through the real CLI, GNU tar as the oracle for the
// sparse format in both directions, and hostile bundles refused with nothing written outside
// the target directory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BundleError, unpackBundle } from "../../src/bundle/read.ts";
import { END_OF_ARCHIVE, memberHeaders, padding, sparseHeaders, sparseMap } from "../../src/bundle/tar-out.ts";
import { sparseFileSha256 } from "../../src/bundle/write.ts";
import { openExt4Image } from "../../src/ext4/read/index.ts";
import { fileChunks } from "../../src/oci/layer-stream.ts";
import { zstdDecompressNative } from "../../src/oci/zstd.ts";
import { testWith } from "../helpers/env.ts";
import { e2fsckClean } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const REPO_ROOT = path.resolve(import.meta.dir, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-bundle-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = path.join(tmp, `${name}-${n++}`);
  fs.mkdirSync(d);
  return d;
};

async function* pieces(bytes: Uint8Array, size = 7000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

const bundle = path.join(tmp, "tiny.tar.zst");
let made: { path: string; sha256: string; size: number; manifest: Record<string, unknown> };

beforeAll(async () => {
  const t = new TarBuilder();
  t.dir("bin/", { mtime: 1_700_000_000 });
  t.file("bin/sh", "#!fake\n", { mode: 0o755, mtime: 1_700_000_000 });
  t.dir("root/", { mode: 0o700, mtime: 1_700_000_000 });
  t.file("root/.profile", "echo hi\n", { mtime: 1_700_000_000 });
  const tar = path.join(tmp, "tiny.tar");
  fs.writeFileSync(tar, t.end());
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "internal", "make-bundle", "--rootfs-tar", tar, "--name", "tiny", "--distro", "test", "--arch", "amd64", "--kernel-ref", "cloud-6.1", "--description", "a tiny image", "--size", "64M", "--level", "3", "--out", bundle, "--json"], {
    cwd: REPO_ROOT,
    env: { ...process.env, SOURCE_DATE_EPOCH: "1700000000" },
  });
  if (p.exitCode !== 0) throw new Error(`make-bundle failed: ${p.stderr.toString()}`);
  made = JSON.parse(p.stdout.toString());
}, 60_000);

describe("make-bundle", () => {
  test("prints path, sha256 and size of the bundle it wrote, and its manifest", () => {
    expect(made.path).toBe(bundle);
    expect(made.size).toBe(fs.statSync(bundle).size);
    expect(made.sha256).toBe(new Bun.CryptoHasher("sha256").update(fs.readFileSync(bundle)).digest("hex"));
    expect(made.manifest).toMatchObject({ name: "tiny", distro: "test", arch: "amd64", kernel_ref: "cloud-6.1", description: "a tiny image", created: "2023-11-14T22:13:20.000Z", init: "banger-init", size_bytes: 64 << 20 });
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".make-bundle-") || f.includes(".tmp"))).toEqual([]);
  });

  testWith({ tools: ["tar", "zstd", "e2fsck"] }, "GNU tar restores the same sparse files banger's reader does; the rootfs is fsck-clean, with guest files and no SSH key", async () => {
    const gnu = fresh("gnu");
    const r = Bun.spawnSync(["tar", "--zstd", "-xSf", bundle, "-C", gnu]);
    expect(r.stderr.toString()).toBe("");
    expect(fs.readdirSync(gnu).sort()).toEqual(["manifest.json", "rootfs.ext4", "work-seed.ext4"]);
    const ours = fresh("ours");
    const manifest = await unpackBundle(zstdDecompressNative(fileChunks(bundle)), ours, { where: "tiny.tar.zst", arch: "amd64" });
    expect(manifest).toEqual(made.manifest as never);
    for (const f of ["rootfs.ext4", "work-seed.ext4"]) {
      expect(Bun.spawnSync(["cmp", path.join(gnu, f), path.join(ours, f)]).exitCode).toBe(0);
      const st = fs.statSync(path.join(ours, f));
      expect(st.blocks * 512).toBeLessThan(st.size / 4); // holes stayed holes
    }
    e2fsckClean(path.join(ours, "rootfs.ext4"));
    const img = openExt4Image(path.join(ours, "rootfs.ext4"));
    try {
      expect(img.stat(img.lookup("/usr/local/libexec/banger-init")).mode & 0o7777).toBe(0o755);
      expect(() => img.lookup("/root/.ssh/authorized_keys")).toThrow();
    } finally {
      img.close();
    }
    const seed = openExt4Image(path.join(ours, "work-seed.ext4"));
    try {
      expect(new TextDecoder().decode(seed.readFile(seed.lookup("/.profile")))).toBe("echo hi\n");
    } finally {
      seed.close();
    }
  }, 60_000);

  testWith({ tools: ["tar", "truncate"] }, "a sparse member written by GNU tar (PAX sparse 1.0) is read with its holes", async () => {
    const dir = fresh("gnu-sparse");
    const file = path.join(dir, "rootfs.ext4");
    Bun.spawnSync(["truncate", "-s", "8M", file]);
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, new Uint8Array(4096).fill(7), 0, 4096, 1 << 20);
    fs.writeSync(fd, new Uint8Array(100).fill(9), 0, 100, 5 << 20);
    fs.closeSync(fd);
    const manifest = { name: "g", distro: "d", arch: "amd64", kernel_ref: null, description: "", created: "2026-01-01T00:00:00Z", init: "banger-init", rootfs_sha256: sparseFileSha256(file), size_bytes: 8 << 20 };
    fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
    const tar = path.join(dir, "b.tar");
    const r = Bun.spawnSync(["tar", "--posix", "--sparse", "--sparse-version=1.0", "-cf", tar, "-C", dir, "manifest.json", "rootfs.ext4"]);
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    const out = fresh("gnu-sparse-out");
    await unpackBundle(pieces(fs.readFileSync(tar)), out, { where: "b.tar" });
    expect(Bun.spawnSync(["cmp", file, path.join(out, "rootfs.ext4")]).exitCode).toBe(0);
    expect(fs.statSync(path.join(out, "rootfs.ext4")).blocks * 512).toBeLessThan(1 << 20);
  });
});

describe("hostile bundles are refused, naming the bundle and the member", () => {
  const enc = new TextEncoder();
  const rootfs = new Uint8Array(8192).fill(1);
  const sha = new Bun.CryptoHasher("sha256").update(rootfs).digest("hex");
  const manifestJson = (extra: Record<string, unknown> = {}) => enc.encode(JSON.stringify({ name: "h", distro: "d", arch: "amd64", kernel_ref: null, description: "", created: "2026-01-01T00:00:00Z", init: "systemd", rootfs_sha256: sha, size_bytes: rootfs.length, ...extra }));
  const member = (name: string, body: Uint8Array, type = "0"): Uint8Array[] => {
    const hs = memberHeaders(name, body.length, 0);
    if (type !== "0") {
      const h = hs[hs.length - 1]!;
      h[156] = type.charCodeAt(0);
      // fix the checksum after changing the type
      h.fill(32, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    }
    return [...hs, body, padding(body.length)];
  };
  const tarOf = (...parts: Uint8Array[][]): Uint8Array => {
    const all = [...parts.flat(), END_OF_ARCHIVE];
    const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of all) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const good = () => [member("manifest.json", manifestJson()), member("rootfs.ext4", rootfs)];

  async function refused(tar: Uint8Array, opts: { arch?: string } = {}): Promise<{ message: string; files: string[] }> {
    const parent = fresh("hostile");
    const dir = path.join(parent, "staging");
    fs.mkdirSync(dir);
    const err = await unpackBundle(pieces(tar), dir, { where: "evil.tar.zst", ...opts }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).not.toBeNull();
    // Nothing beside the staging dir (which the caller removes).
    expect(fs.readdirSync(parent)).toEqual(["staging"]);
    return { message: err!.message, files: fs.readdirSync(dir) };
  }

  test("the good bundle unpacks (the cases below differ from it in one way each)", async () => {
    const dir = fresh("good");
    expect((await unpackBundle(pieces(tarOf(...good())), dir, { where: "x" })).name).toBe("h");
    expect(fs.readFileSync(path.join(dir, "rootfs.ext4"))).toEqual(Buffer.from(rootfs));
  });

  const cases: [string, () => Uint8Array, RegExp, { arch?: string }?][] = [
    ["an extra member", () => tarOf(...good(), member("etc/passwd", enc.encode("x"))), /^evil\.tar\.zst: unexpected member "etc\/passwd"/],
    ["a ../ path", () => tarOf(member("manifest.json", manifestJson()), member("../rootfs.ext4", rootfs)), /unexpected member "\.\.\/rootfs\.ext4"/],
    ["a directory in the name", () => tarOf(member("manifest.json", manifestJson()), member("x/rootfs.ext4", rootfs)), /unexpected member "x\/rootfs\.ext4"/],
    ["a symlink named rootfs.ext4", () => tarOf(member("manifest.json", manifestJson()), member("rootfs.ext4", new Uint8Array(0), "2")), /member "rootfs\.ext4" is not a regular file/],
    ["manifest.json not first", () => tarOf(member("rootfs.ext4", rootfs), member("manifest.json", manifestJson())), /manifest\.json must be the first member/],
    ["a member twice", () => tarOf(...good(), member("rootfs.ext4", rootfs)), /member "rootfs\.ext4" appears twice/],
    ["a wrong rootfs sha256", () => tarOf(member("manifest.json", manifestJson({ rootfs_sha256: "0".repeat(64) })), member("rootfs.ext4", rootfs)), /rootfs\.ext4 has sha256 [0-9a-f]{64}, the manifest says 0{64}/],
    ["another architecture", () => tarOf(member("manifest.json", manifestJson({ arch: "arm64" })), member("rootfs.ext4", rootfs)), /the bundle is for arm64, this machine needs amd64/, { arch: "amd64" }],
    ["a truncated archive", () => tarOf(...good()).subarray(0, 512 * 3 + 100), /truncated/],
    ["no rootfs", () => tarOf(member("manifest.json", manifestJson())), /no rootfs\.ext4/],
    ["a manifest that is not JSON", () => tarOf(member("manifest.json", enc.encode("{nope")), member("rootfs.ext4", rootfs)), /manifest\.json is not JSON/],
    ["a sparse map past the file's size", () => {
      const map = sparseMap([[100_000, 100_100]], 50_000);
      const data = new Uint8Array(100);
      return tarOf(member("manifest.json", manifestJson()), [...sparseHeaders("rootfs.ext4", 50_000, map.length + 100, 0), map, data, padding(map.length + 100)]);
    }, /sparse map has overlapping or out-of-range entries/],
  ];
  for (const [what, make, message, opts] of cases) {
    test(what, async () => {
      const r = await refused(make(), opts);
      expect(r.message).toMatch(message);
      expect(r.message).toStartWith("evil.tar.zst: ");
    });
  }

  test("errors are BundleErrors", async () => {
    const err = await unpackBundle(pieces(tarOf(member("x", enc.encode("y")))), fresh("t"), { where: "w" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleError);
  });
});
