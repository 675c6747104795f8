// End to end: `banger image pull` of the three-layer pull fixture (test/helpers/pull-fixtures.ts)
// from Debian's real docker-registry on 127.0.0.1 (started here), behind a multi-arch index
// whose first entry is an arm64 decoy (plus an attestation entry). The rootfs.ext4 it writes is
// loop-mounted and compared entry by entry with what umoci unpacks from the same image (zero
// differences beyond the few documented in test/helpers/umoci-oracle.ts), passes e2fsck, and is
// byte-identical when the same image comes from an `oci:` layout or a skopeo-made
// `docker-archive:`. Starts: the banger CLI (child processes), docker-registry, umoci, skopeo,
// e2fsck, mount (root).
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { hasTool, testWith } from "../helpers/env.ts";
import { mountImage } from "../helpers/kernel-compare.ts";
import { e2fsckClean, run, scratchDir } from "../helpers/oracles.ts";
import { AMD64_CONFIG, LAYOUT_TAGS, pullFixture, pushPullFixture, skopeoDockerArchive, writePullFixtureLayout } from "../helpers/pull-fixtures.ts";
import { startRegistry, type RunningRegistry } from "../helpers/registry.ts";
import { compareImageWithUmoci, guestOnlyPaths, umociFixtureSnapshot } from "../helpers/umoci-oracle.ts";
import { cachedBlobs, ctx, listImages, pullEnv, pullOk, banger, stagingDirs, type ImageRecord, type PullEnv, stopDaemons } from "./pull-lib.ts";

const NEEDS = { tools: ["docker-registry", "umoci", "skopeo", "e2fsck", "mount", "umount", "losetup", "getfattr", "cmp"], root: true };
const work = scratchDir("e2e-pull");
let reg: RunningRegistry | undefined;
let layout = "";
let archive = "";
const REPO = "pull/app";

if (hasTool("docker-registry") && hasTool("skopeo")) {
  beforeAll(async () => {
    reg = await startRegistry();
    await pushPullFixture(reg.url, REPO, "v1");
    layout = writePullFixtureLayout(join(work, "layout"));
    archive = skopeoDockerArchive(layout, LAYOUT_TAGS.amd64, join(work, "image.docker.tar"));
  }, 30_000);
}
afterAll(async () => {
  await stopDaemons();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The registry pull's result, shared by the tests below (pulled once). */
let firstEnv: PullEnv | undefined;
let first: { record: ImageRecord; rootfs: string } | undefined;
async function registryPull(): Promise<{ record: ImageRecord; rootfs: string }> {
  if (first) return first;
  const e = pullEnv(work);
  firstEnv = e;
  const { record } = await pullOk(`${reg!.host}/${REPO}:v1`, e, ["--name", "fixture"]);
  first = { record, rootfs: record.rootfsPath };
  return first;
}

testWith(NEEDS, "registry pull by tag: the amd64 image behind the decoy, its record, its store entry", async () => {
  const f = pullFixture();
  const e = pullEnv(work);
  const source = `${reg!.host}/${REPO}:v1`;
  const t0 = Date.now();
  const { record, run: r } = await pullOk(source, e, ["--name", "fixture"]);
  expect(r.stdout.trim().split("\n").length, ctx(r)).toBe(1);
  expect(record).toMatchObject({
    name: "fixture",
    digest: f.amd64.manifestDigest,
    platform: "linux/amd64",
    env: AMD64_CONFIG.Env,
    cmd: AMD64_CONFIG.Cmd,
    entrypoint: AMD64_CONFIG.Entrypoint,
    workingDir: AMD64_CONFIG.WorkingDir,
    user: AMD64_CONFIG.User,
  });
  expect(record.source).toContain(`${REPO}:v1`);
  expect(record.id).toMatch(/^[A-Za-z0-9_-]+$/);
  expect(record.rootfsPath).toBe(join(e.imagesDir, record.id, "rootfs.ext4"));
  expect(statSync(record.rootfsPath).size).toBe(record.sizeBytes);
  const created = Date.parse(record.createdAt);
  expect(created).toBeGreaterThanOrEqual(t0 - 1000);
  expect(created).toBeLessThanOrEqual(Date.now() + 1000);
  // The store: the image dir, the database, no staging left; list and show agree with pull.
  expect(existsSync(join(e.state, "banger", "banger.db"))).toBe(true);
  expect(stagingDirs(e.state)).toEqual([]);
  const list = await listImages(e);
  expect(list.map((i) => [i.id, i.name, i.digest])).toEqual([[record.id, "fixture", f.amd64.manifestDigest]]);
  const show = await banger(["image", "show", "fixture", "--json"], e, 30_000);
  expect(show.exitCode, ctx(show)).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({ id: record.id, name: "fixture", digest: record.digest, rootfsPath: record.rootfsPath });
  // The decoy's layer was never downloaded; the amd64 image's layers were, into the cache.
  const blobs = cachedBlobs(e.blobCache);
  for (const l of f.amd64.layers) expect(blobs).toContain(l.digest.slice(7));
  for (const l of f.arm64.layers) expect(blobs).not.toContain(l.digest.slice(7));
  first = { record, rootfs: record.rootfsPath };
  firstEnv = e;
}, 90_000);

testWith(NEEDS, "the pulled rootfs equals umoci's unpack of the same image, and passes e2fsck (check and preen)", async () => {
  const { rootfs, record } = await registryPull();
  e2fsckClean(rootfs);
  // banger's guest files are the one intended difference: they are left out here (their
  // content and modes are checked by test/inject and by booting, test/e2e/guest-boot.test.ts).
  const reference = umociFixtureSnapshot();
  const ignore = guestOnlyPaths(record.injected, reference);
  expect(record.injected).toContain("/var/lib/banger/first-boot-pending");
  expect(ignore).toContain("/var/lib"); // the fixture has no /var/lib: banger implied it
  const diffs = await compareImageWithUmoci(rootfs, reference, { ignore });
  expect(diffs).toEqual([]);
}, 90_000);

testWith(NEEDS, "the same image from oci: and docker-archive: gives a byte-identical rootfs.ext4", async () => {
  const { rootfs } = await registryPull();
  // The same config dir, so the same SSH key goes into authorized_keys.
  const fromLayout = await pullOk(`oci:${layout}:${LAYOUT_TAGS.index}`, pullEnv(work, { config: firstEnv!.config }), ["--name", "fixture"]);
  const fromArchive = await pullOk(`docker-archive:${archive}`, pullEnv(work, { config: firstEnv!.config }), ["--name", "fixture"]);
  expect(fromLayout.record.digest).toBe(pullFixture().amd64.manifestDigest);
  expect(fromLayout.record.platform).toBe("linux/amd64");
  for (const [what, other] of [["oci:", fromLayout.record.rootfsPath], ["docker-archive:", fromArchive.record.rootfsPath]] as const) {
    const c = run(["cmp", rootfs, other]);
    expect(`${what} ${c.exitCode === 0 ? "identical" : c.stdout + c.stderr}`).toBe(`${what} identical`);
  }
}, 120_000);

testWith(NEEDS, "--platform linux/arm64 picks the decoy", async () => {
  const f = pullFixture();
  const e = pullEnv(work);
  const { record } = await pullOk(`${reg!.host}/${REPO}:v1`, e, ["--platform", "linux/arm64", "--name", "decoy"]);
  expect(record.digest).toBe(f.arm64.manifestDigest);
  expect(record.platform).toMatch(/^linux\/arm64(\/v8)?$/);
  expect(record.cmd).toEqual(["/bin/decoy"]);
  await mountImage(record.rootfsPath, (mnt) => {
    expect(readFileSync(join(mnt, "etc/arch"), "utf8")).toBe("arm64\n");
    expect(existsSync(join(mnt, "bin/decoy"))).toBe(true);
    expect(existsSync(join(mnt, "etc/hostname"))).toBe(false);
  });
  const blobs = cachedBlobs(e.blobCache);
  for (const l of f.amd64.layers) expect(blobs).not.toContain(l.digest.slice(7));
}, 90_000);
