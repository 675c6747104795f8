import { afterAll, beforeAll, expect, spyOn, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { imageCachePruneCommand } from "../../src/cli/commands/image-cache.ts";
import { BlobCache } from "../../src/oci/index.ts";
import { sha256 } from "../helpers/oci-images.ts";

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-oci-prune-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  const error = spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
  try {
    return { code: await imageCachePruneCommand.run(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

test("banger image cache prune: keeps what a recorded image needs, removes the rest; --all removes everything", async () => {
  const cache = new BlobCache(path.join(tmp, "cache"));
  const layer = new TextEncoder().encode("layer bytes");
  const config = new TextEncoder().encode(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [sha256(layer)] } }));
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    }),
  );
  for (const b of [layer, config, manifest]) await cache.putBytes(sha256(b), b, "test");
  await cache.addRef("example/app:1", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length });
  const orphan = new TextEncoder().encode("nobody needs me");
  await cache.putBytes(sha256(orphan), orphan, "test");
  // An abandoned partial download (its lock names a dead process).
  fs.writeFileSync(path.join(cache.ingestDir, `${"1".repeat(64)}.partial`), "half");
  fs.writeFileSync(path.join(cache.ingestDir, `${"1".repeat(64)}.lock`), "999999999");
  // Blobs younger than the grace period survive a plain prune.
  let r = await run(["--cache-dir", cache.root]);
  expect(r.code).toBe(0);
  expect(r.out).toBe("");
  expect(fs.readdirSync(cache.ingestDir)).toEqual([]);
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(cache.blobPath(sha256(orphan)), old, old);
  r = await run(["--cache-dir", cache.root, "--dry-run"]);
  expect(r.out).toBe(`would remove ${sha256(orphan)}`);
  expect(fs.existsSync(cache.blobPath(sha256(orphan)))).toBe(true);
  r = await run(["--cache-dir", cache.root]);
  expect(r.out).toBe(`removed ${sha256(orphan)}`);
  expect(r.err).toContain("3 kept");
  expect(fs.readdirSync(cache.blobsDir).length).toBe(3);
  r = await run(["--cache-dir", cache.root, "--all"]);
  expect(r.out.split("\n").length).toBe(3);
  expect(fs.readdirSync(cache.blobsDir)).toEqual([]);
  expect(await cache.readIndex()).toEqual([]);
});
