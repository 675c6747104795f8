// Bundles end to end, through the real CLI: a pulled image pushed to docker-registry as a
// bundle artifact and pulled back elsewhere (byte-identical rootfs and seed); a catalog image
// served over loopback HTTP, installed by `image pull <name>` and booted under QEMU with the
// VM's conf carrying the user's key (a bundle holds no one's key); a catalog checksum mismatch.
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureSshKey } from "../../src/daemon/ssh-key.ts";
import { debianNoInitTar } from "../helpers/debian.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { run, scratchDir } from "../helpers/oracles.ts";
import { bootVm, cloudKernel, QEMU_NETWORK_CONF, QEMU_TOOLS, vmDisk } from "../helpers/qemu.ts";
import { startRegistry, type RunningRegistry } from "../helpers/registry.ts";
import { banger, ctx, listImages, pullEnv, pullOk, stagingDirs, stopDaemons } from "./pull-lib.ts";

const NEEDS = { tools: ["docker-registry", "mmdebstrap", "cmp"], root: true };
const work = scratchDir("e2e-bundle");
let reg: RunningRegistry | undefined;
let server: ReturnType<typeof Bun.serve> | undefined;
let bundleBytes = new Uint8Array(0);
let bundleSha = "";
let catalogFile = "";

if (hasTool("docker-registry") && hasTool("mmdebstrap")) {
  beforeAll(async () => {
    reg = await startRegistry();
    const tar = await debianNoInitTar();
    const out = join(work, "noinit.tar.zst");
    const e = pullEnv(work);
    const r = await banger(["internal", "make-bundle", "--rootfs-tar", tar, "--name", "deb-noinit", "--distro", "debian", "--arch", "amd64", "--level", "3", "--out", out, "--json"], e, 120_000);
    if (r.exitCode !== 0) throw new Error(ctx(r));
    bundleSha = (JSON.parse(r.stdout) as { sha256: string }).sha256;
    bundleBytes = new Uint8Array(readFileSync(out));
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(bundleBytes) });
    catalogFile = join(work, "catalog.json");
    const entry = (sha: string, name: string) => ({ name, distro: "debian", arch: "amd64", url: `http://127.0.0.1:${server!.port}/noinit.tar.zst`, sha256: sha, size: bundleBytes.length });
    writeFileSync(catalogFile, JSON.stringify({ images: [entry(bundleSha, "deb-noinit"), entry("0".repeat(64), "deb-broken")] }));
  }, 300_000);
}
afterAll(async () => {
  await stopDaemons();
  server?.stop(true);
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

testWith(NEEDS, "push an image as a bundle artifact, pull it back elsewhere: the same rootfs and work seed, byte for byte", async () => {
  const a = pullEnv(work);
  const { record: orig } = await pullOk(`rootfs:${await debianNoInitTar()}`, a, ["--name", "orig"], 120_000);
  const ref = `${reg!.host}/banger/noinit:v1`;
  const push = await banger(["image", "push", "orig", ref, "--level", "3", "--json"], a, 120_000);
  expect(push.exitCode, ctx(push)).toBe(0);
  const b = pullEnv(work);
  const { record: back } = await pullOk(ref, b, ["--name", "back"], 120_000);
  expect(back.init).toBe("banger-init");
  expect(back.kernelCmdline).toBe(orig.kernelCmdline);
  expect(run(["cmp", orig.rootfsPath, back.rootfsPath]).exitCode).toBe(0);
  expect(run(["cmp", orig.workSeedPath!, back.workSeedPath!]).exitCode).toBe(0);
}, 300_000);

testWith(NEEDS, "a catalog checksum mismatch: one line naming the image, exit 1, nothing kept", async () => {
  const e = pullEnv(work);
  e.env.BANGER_IMAGE_CATALOG = catalogFile;
  const r = await banger(["image", "pull", "deb-broken"], e, 120_000);
  expect(r.exitCode, ctx(r)).toBe(1);
  expect(r.stderr.trim().split("\n").at(-1)).toMatch(/image "deb-broken".*has sha256 [0-9a-f]{64}, the catalog says 0{64}/);
  expect(await listImages(e)).toEqual([]);
  expect(stagingDirs(e.root)).toEqual([]);
}, 120_000);

testWith({ ...NEEDS, tools: [...NEEDS.tools, ...QEMU_TOOLS] }, "a catalog image installs by name and boots; the VM's conf brings the user's key", async () => {
  if (!cloudKernel()) throw new Error("no cloud kernel in /boot: .ci/run installs linux-image-cloud-amd64");
  const e = pullEnv(work);
  e.env.BANGER_IMAGE_CATALOG = catalogFile;
  const { record } = await pullOk("deb-noinit", e, [], 120_000);
  expect(record.name).toBe("deb-noinit");
  expect(record.source).toContain("deb-noinit");
  expect(record.init).toBe("banger-init");
  expect(existsSync(record.rootfsPath)).toBe(true);
  const key = await ensureSshKey(join(e.config, "banger", "ssh"));
  const disk = await vmDisk(record.rootfsPath, join(work, "vm-catalog"), `${QEMU_NETWORK_CONF}BANGER_AUTHORIZED_KEY="${key.publicKey}"\n`);
  const vm = await bootVm({ disk, append: record.kernelCmdline!, privateKey: key.privateKeyPath });
  try {
    await vm.waitForSsh(vm.accel === "kvm" ? 90_000 : 240_000);
    expect((await vm.ssh("hostname")).stdout.trim()).toBe("banger-guest");
    await vm.ssh("poweroff", 10_000);
    const code = await Promise.race([vm.exited, Bun.sleep(30_000).then(() => "timeout")]);
    expect(code).not.toBe("timeout");
  } finally {
    await vm.kill();
  }
}, 600_000);
