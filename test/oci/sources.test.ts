// Local sources (OCI layout dir, docker save archive, rootfs tar / stdin) and layer readers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DockerArchiveSource, OciError, OciLayoutSource, RootfsTarSource, parsePlatform, parseSource, type ResolvedImage } from "../../src/oci/index.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import { concat, makeDockerArchive, makeImage, makeIndex, makeLayer, makeTar, sha256, writeOciLayout, type TestImage } from "../helpers/oci-images.ts";

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-oci-src-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c.slice()); // zstd pieces are reused
  return concat(parts);
}

async function expectLayers(img: ResolvedImage, expected: TestImage): Promise<void> {
  expect(img.layers.length).toBe(expected.layers.length);
  for (const [i, l] of expected.layers.entries()) {
    expect(img.layers[i]!.diffId).toBe(l.diffId);
    expect(await readAll(img.openLayer(i))).toEqual(l.tar);
  }
}

const tarA = makeTar([{ name: "etc/", dir: true }, { name: "etc/a", content: "a\n".repeat(3000) }]);
const tarB = makeTar([{ name: "etc/b", content: "b\n".repeat(3000) }]);
const amd = makeImage({ layers: [makeLayer(tarA, "gzip"), makeLayer(tarB, "zstd")] });
const arm = makeImage({ layers: [makeLayer(tarB, "none")], platform: { os: "linux", architecture: "arm64" } });

describe("oci: layout directories", () => {
  test("tags, nested index with platform selection, blob verification", async () => {
    const dir = path.join(tmp, "layout1");
    const index = makeIndex([amd, arm]);
    writeOciLayout(dir, [{ tag: "multi", index, images: [amd, arm] }, { tag: "single", image: amd }]);
    const multi = await parseSource(`oci:${dir}:multi`).resolve({ platform: parsePlatform("linux/arm64") });
    expect(multi.manifestDigest).toBe(arm.manifestDigest);
    await expectLayers(multi, arm);
    const single = await new OciLayoutSource(dir, "single").resolve();
    await expectLayers(single, amd);
    await expect(new OciLayoutSource(dir, "nope").resolve()).rejects.toThrow(/no image tagged "nope" .*tags: multi, single/);
    await expect(new OciLayoutSource(dir).resolve()).rejects.toThrow(/holds several images; name one as oci:DIR:TAG \(tags: multi, single\)/);
    await expect(new OciLayoutSource(dir, "multi").resolve({ platform: parsePlatform("linux/riscv64") })).rejects.toThrow(/no image for platform linux\/riscv64; the index offers linux\/amd64, linux\/arm64/);
    // A single-platform image of another architecture is refused when a platform is asked for.
    await expect(new OciLayoutSource(dir, "single").resolve({ platform: parsePlatform("linux/arm64") })).rejects.toThrow(/image is linux\/amd64 only, not linux\/arm64\/v8/);
    // Tamper with a layer blob: the stream errors at its end.
    const blob = path.join(dir, "blobs/sha256", amd.layers[1]!.digest.slice(7));
    const bytes = fs.readFileSync(blob);
    const bad = Buffer.from(bytes);
    bad[bad.length - 5] ^= 0xff;
    fs.writeFileSync(blob, bad);
    await expect(readAll(single.openLayer(1))).rejects.toThrow(/layer 1 .*(mismatch|decompression failed)/);
    fs.writeFileSync(blob, bytes);
  });

  test("layer diff_id mismatch is an error at the end of the stream", async () => {
    const dir = path.join(tmp, "layout2");
    const lie = makeLayer(tarA, "gzip");
    const img = makeImage({ layers: [{ ...lie, diffId: sha256("something else") }] });
    writeOciLayout(dir, [{ tag: "t", image: img }]);
    const r = await new OciLayoutSource(dir, "t").resolve();
    const reader = r.openLayer(0).getReader();
    let got = 0;
    let error: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got += value.length;
      }
    } catch (e) {
      error = e;
    }
    expect(got).toBe(tarA.length); // every byte was delivered, then the stream failed
    expect(String(error)).toContain(`diff_id (uncompressed digest) mismatch: expected ${sha256("something else")}`);
  });

  test("unknown layer media types and schema1 manifests are refused", async () => {
    const dir = path.join(tmp, "layout3");
    const l = { ...makeLayer(tarA, "gzip"), mediaType: "application/vnd.example.layer.v1.tar+lz4" };
    writeOciLayout(dir, [{ tag: "t", image: makeImage({ layers: [l] }) }]);
    await expect(new OciLayoutSource(dir, "t").resolve()).rejects.toThrow(/unsupported media type "application\/vnd.example.layer.v1.tar\+lz4"/);
    const schema1 = new TextEncoder().encode(JSON.stringify({ schemaVersion: 1, name: "x", fsLayers: [] }));
    expect(() => parseManifest(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", "manifest of x")).toThrow(/schema 1 manifests are not supported/);
  });

  test("one tag with an entry per platform (as our cache writes them), platform read from the configs", async () => {
    const dir = path.join(tmp, "layout4");
    writeOciLayout(dir, [{ tag: "t", image: amd }, { tag: "t", image: arm }]);
    const r = await new OciLayoutSource(dir, "t").resolve({ platform: parsePlatform("linux/arm64") });
    expect(r.manifestDigest).toBe(arm.manifestDigest);
  });
});

describe("docker-archive", () => {
  test("classic docker save layout, selected by tag", async () => {
    const file = path.join(tmp, "saved.tar");
    fs.writeFileSync(file, makeDockerArchive(amd, ["example/app:1"]));
    const r = await parseSource(`docker-archive:${file}`).resolve();
    await expectLayers(r, amd);
    expect(r.layers.map((l) => l.compression)).toEqual(["none", "none"]);
    expect(r.config.config?.Cmd).toEqual(["/bin/sh"]);
    const again = await parseSource(`docker-archive:${file}:example/app:1`).resolve();
    expect(again.manifestDigest).toBe(r.manifestDigest);
    await expect(new DockerArchiveSource(file, "other:2").resolve()).rejects.toThrow(/no image tagged "other:2" \(archive has: example\/app:1\)/);
    await expect(new DockerArchiveSource(path.join(tmp, "missing.tar")).resolve()).rejects.toThrow(/missing.tar: cannot open/);
  });
});

describe("rootfs tars", () => {
  test("plain, gzip and zstd files; one layer; platform as requested", async () => {
    for (const c of ["none", "gzip", "zstd"] as const) {
      const l = makeLayer(tarA, c);
      const file = path.join(tmp, `rootfs-${c}.tar`);
      fs.writeFileSync(file, l.blob);
      const r = await parseSource(`rootfs:${file}`).resolve({ platform: parsePlatform("linux/arm64") });
      expect(r.layers[0]!.compression).toBe(c);
      expect(r.platform).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
      expect(await readAll(r.openLayer(0))).toEqual(tarA);
      await r.dispose();
    }
  });

  test("standard input is spooled to an unlinked file in tmpDir, closed by dispose()", async () => {
    const blob = makeLayer(tarB, "gzip").blob;
    const stdin = (async function* () {
      for (let i = 0; i < blob.length; i += 1000) yield blob.subarray(i, i + 1000);
    })();
    const spoolDir = fs.mkdtempSync(path.join(tmp, "spool-"));
    // The spool has no name: it is seen only as an open descriptor of a deleted file in spoolDir.
    const openSpools = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
          return link.startsWith(`${spoolDir}/.stdin.spool-`) && link.endsWith(" (deleted)");
        } catch {
          return false;
        }
      });
    const src = new RootfsTarSource("-", { stdin, tmpDir: spoolDir });
    const r = await src.resolve();
    expect(fs.readdirSync(spoolDir)).toEqual([]);
    expect(openSpools().length).toBe(1);
    expect(await readAll(r.openLayer(0))).toEqual(tarB);
    expect(await readAll(r.openLayer(0))).toEqual(tarB); // twice: the writer streams layers again
    await r.dispose();
    expect(openSpools()).toEqual([]);
    expect(fs.readdirSync(spoolDir)).toEqual([]);
  });

  test("a file that changes after resolve is caught", async () => {
    const file = path.join(tmp, "changing.tar");
    fs.writeFileSync(file, tarA);
    const r = await new RootfsTarSource(file).resolve();
    fs.writeFileSync(file, tarB);
    await expect(readAll(r.openLayer(0))).rejects.toBeInstanceOf(OciError);
  });
});
