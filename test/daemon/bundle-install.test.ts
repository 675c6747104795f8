// Catalog images: a bundle made by make-bundle, served by a loopback HTTP server, downloaded
// (verified, resumed after a cut, cached by digest) and unpacked into a staging directory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle } from "../../src/daemon/make-bundle.ts";
import { installBundle } from "../../src/daemon/bundle-install.ts";
import { findInCatalog, loadCatalog, parseCatalog, type CatalogImage } from "../../src/daemon/catalog.ts";
import { DownloadError } from "../../src/oci/download.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-bundle-install-"));
let bytes: Uint8Array;
let sha = "";
let server: ReturnType<typeof Bun.serve>;
const requests: { range: string | null }[] = [];
let cutFirst = false;

beforeAll(async () => {
  const t = new TarBuilder();
  t.dir("root/", { mode: 0o700 });
  t.file("root/.profile", "x\n");
  t.file("etc/hostname", "h\n");
  const tar = path.join(tmp, "r.tar");
  fs.writeFileSync(tar, t.end());
  const r = await makeBundle({ rootfsTar: tar, name: "tiny", distro: "test", arch: "amd64", out: path.join(tmp, "tiny.tar.zst"), level: 3, sizeBytes: 64 << 20, timestamp: 1_700_000_000 });
  bytes = new Uint8Array(fs.readFileSync(r.path));
  sha = r.sha256;
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const range = req.headers.get("range");
      requests.push({ range });
      if (cutFirst && requests.length === 1) {
        // Half the body, then the response ends early.
        return new Response(bytes.subarray(0, bytes.length >> 1));
      }
      if (range) {
        const from = Number(/bytes=(\d+)-/.exec(range)![1]);
        return new Response(bytes.subarray(from), { status: 206, headers: { "content-range": `bytes ${from}-${bytes.length - 1}/${bytes.length}` } });
      }
      return new Response(bytes);
    },
  });
}, 60_000);
afterAll(() => {
  server.stop(true);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const entry = (over: Partial<CatalogImage> = {}): CatalogImage => ({ name: "tiny", distro: "test", arch: "amd64", url: `http://127.0.0.1:${server.port}/tiny.tar.zst`, sha256: sha, size: bytes.length, ...over });
let k = 0;
const dirs = () => {
  const base = path.join(tmp, `case-${k++}`);
  const staging = path.join(base, "staging");
  fs.mkdirSync(staging, { recursive: true });
  return { bundleDir: path.join(base, "bundles"), staging };
};

test("downloads, verifies and unpacks; a second install of the same digest downloads nothing", async () => {
  requests.length = 0;
  const d = dirs();
  const m = await installBundle(entry(), d.staging, { bundleDir: d.bundleDir });
  expect(m).toMatchObject({ name: "tiny", arch: "amd64", init: "banger-init" });
  expect(fs.readdirSync(d.staging).sort()).toEqual(["rootfs.ext4", "work-seed.ext4"]);
  expect(fs.readdirSync(d.bundleDir)).toEqual([`${sha}.tar.zst`]);
  const staging2 = path.join(path.dirname(d.staging), "staging2");
  fs.mkdirSync(staging2);
  await installBundle(entry(), staging2, { bundleDir: d.bundleDir });
  expect(requests.length).toBe(1);
});

test("a download cut in the middle resumes with a Range request and still verifies", async () => {
  requests.length = 0;
  cutFirst = true;
  try {
    const d = dirs();
    const seen: number[] = [];
    await installBundle(entry(), d.staging, { bundleDir: d.bundleDir, progress: (done) => seen.push(done) });
    expect(requests.length).toBe(2);
    expect(requests[0]!.range).toBeNull();
    expect(requests[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(requests[1]!.range!)![0])).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(bytes.length);
  } finally {
    cutFirst = false;
  }
});

test("a checksum mismatch is one clear error; nothing is kept, not even the partial file", async () => {
  const d = dirs();
  const wrong = "0".repeat(64);
  const err = await installBundle(entry({ sha256: wrong }), d.staging, { bundleDir: d.bundleDir }).then(() => new Error("no error"), (e: unknown) => e as Error);
  expect(err).toBeInstanceOf(DownloadError);
  expect(err.message).toContain(`image "tiny" (catalog): http://127.0.0.1:${server.port}/tiny.tar.zst has sha256 ${sha}, the catalog says ${wrong}`);
  expect(fs.readdirSync(d.bundleDir)).toEqual([]);
  expect(fs.readdirSync(d.staging)).toEqual([]);
});

test("a bundle for another architecture, or with another name, is refused after its download", async () => {
  const d = dirs();
  const err = await installBundle(entry({ arch: "arm64" }), d.staging, { bundleDir: d.bundleDir }).then(() => new Error("no error"), (e: unknown) => e as Error);
  expect(err.message).toContain("the bundle is for amd64, this machine needs arm64");
  const d2 = dirs();
  const err2 = await installBundle(entry({ name: "other" }), d2.staging, { bundleDir: d2.bundleDir }).then(() => new Error("no error"), (e: unknown) => e as Error);
  expect(err2.message).toContain('the bundle says it is "tiny"');
});

test("catalogs: the embedded one parses; a file replaces it; bad entries name the field", () => {
  expect(Array.isArray(loadCatalog())).toBe(true);
  const file = path.join(tmp, "catalog.json");
  fs.writeFileSync(file, JSON.stringify({ images: [entry(), entry({ arch: "arm64", url: "http://x/y" })] }));
  const c = loadCatalog(file);
  expect(findInCatalog(c, "tiny", "arm64")!.url).toBe("http://x/y");
  expect(findInCatalog(c, "debian:bookworm", "amd64")).toBeNull();
  expect(() => parseCatalog({ images: [{ ...entry(), sha256: "nope" }] }, "c.json")).toThrow("c.json: images[0].sha256 is missing or invalid");
  expect(() => parseCatalog({ kernels: [] }, "c.json")).toThrow('c.json: expected {"images": [...]}');
});

test("banger image catalog lists the catalog file's entries (text and --json); the embedded one is empty", () => {
  const file = path.join(tmp, "catalog-cli.json");
  fs.writeFileSync(file, JSON.stringify({ images: [{ ...entry(), description: "a tiny image", kernel_ref: "cloud" }] }));
  const root = path.resolve(import.meta.dir, "../..");
  const run = (args: string[], env: Record<string, string>) => Bun.spawnSync([process.execPath, "src/cli/main.ts", "image", "catalog", ...args], { cwd: root, env: { ...process.env, ...env } });
  const j = run(["--json"], { BANGER_IMAGE_CATALOG: file });
  expect(j.exitCode).toBe(0);
  expect(JSON.parse(j.stdout.toString())).toEqual([{ ...entry(), description: "a tiny image", kernel_ref: "cloud" }]);
  const t = run([], { BANGER_IMAGE_CATALOG: file }).stdout.toString();
  expect(t).toMatch(/^NAME +DISTRO +ARCH +SIZE +KERNEL +DESCRIPTION\ntiny +test +amd64 +[\d.]+ MiB +cloud +a tiny image\n$/);
  expect(run(["--json"], { BANGER_IMAGE_CATALOG: "" }).stdout.toString().trim()).toBe("[]");
});
