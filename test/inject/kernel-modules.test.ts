// The guest's boot modules from a real kernel's modules tree (Debian's linux-image-cloud-amd64,
// installed by .ci/run): the wanted modules and everything modules.dep says they need, with
// index files filtered to match; a tree laid out as lib/modules/<version> is found too.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findModulesVersionDir, selectGuestModules } from "../../src/inject/kernel-modules.ts";
import { IN_CI } from "../helpers/env.ts";

function cloudModulesDir(): string | null {
  try {
    const v = fs.readdirSync("/lib/modules").find((n) => n.includes("cloud") && fs.existsSync(path.join("/lib/modules", n, "modules.dep")));
    return v ? path.join("/lib/modules", v) : null;
  } catch {
    return null;
  }
}

const dir = cloudModulesDir();
const t = dir ? test : IN_CI ? test : test.skip;

t(`virtio and vsock modules with their dependencies, and matching indexes${dir ? "" : " [skipped: no cloud kernel modules in /lib/modules; .ci/run installs linux-image-cloud-amd64]"}`, () => {
  if (!dir) throw new Error("CI=true and no cloud kernel modules in /lib/modules (.ci/run installs linux-image-cloud-amd64)");
  const s = selectGuestModules(dir);
  expect(s.version).toBe(path.basename(dir));
  expect(s.missing).toEqual([]);
  const rel = s.files.map((f) => f.path.replace(`/lib/modules/${s.version}/`, ""));
  for (const want of ["kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko", "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko", "kernel/net/vmw_vsock/vsock.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/net/virtio_net.ko", "kernel/net/core/failover.ko"]) {
    expect(rel).toContain(want);
  }
  expect(rel.some((r) => r.includes("hv_sock"))).toBe(false); // not wanted, not a dependency
  // Every module modules.dep names (itself and its dependencies) is in the image; nothing else is listed.
  const dep = new TextDecoder().decode(s.files.find((f) => f.path.endsWith("/modules.dep"))!.bytes);
  for (const line of dep.trim().split("\n")) {
    for (const m of line.replace(":", "").split(/\s+/)) expect(rel).toContain(m);
  }
  expect(dep.trim().split("\n").length).toBe(rel.filter((r) => r.endsWith(".ko")).length);
  const ko = s.files.find((f) => f.path.endsWith("/vsock.ko"))!;
  expect(ko.bytes).toEqual(new Uint8Array(fs.readFileSync(path.join(dir, "kernel/net/vmw_vsock/vsock.ko"))));
  // A modules tree laid out as <dir>/lib/modules/<version> is found the same way.
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), "banger-mods-"));
  try {
    fs.mkdirSync(path.join(tree, "lib", "modules"), { recursive: true });
    fs.symlinkSync(dir, path.join(tree, "lib", "modules", s.version));
    expect(findModulesVersionDir(tree)).toBe(path.join(tree, "lib", "modules", s.version));
    expect(() => findModulesVersionDir(os.tmpdir() + "/nonexistent-banger")).toThrow("no modules.dep found");
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
});

const modprobeTest = dir && Bun.which("modprobe", { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }) ? test : IN_CI ? test : test.skip;
modprobeTest("kmod's own modprobe reads the binary indexes banger writes: dependency order, aliases, built-ins, absent modules", () => {
  if (!dir) throw new Error("CI=true and no cloud kernel modules in /lib/modules (.ci/run installs linux-image-cloud-amd64)");
  const s = selectGuestModules(dir);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kmod-"));
  try {
    for (const f of s.files) {
      const p = path.join(root, f.path);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, f.bytes);
    }
    const modprobe = Bun.which("modprobe", { PATH: `${process.env.PATH}:/usr/sbin:/sbin` })!;
    const show = (what: string) => {
      const r = Bun.spawnSync([modprobe, "-d", root, "-S", s.version, "--show-depends", what]);
      return { code: r.exitCode, lines: r.stdout.toString().trim().split("\n").map((l) => l.trim().replace(`${root}/lib/modules/${s.version}/`, "")) };
    };
    expect(show("vmw_vsock_virtio_transport").lines).toEqual([
      "insmod kernel/drivers/virtio/virtio_ring.ko",
      "insmod kernel/drivers/virtio/virtio.ko",
      "insmod kernel/net/vmw_vsock/vsock.ko",
      "insmod kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
      "insmod kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko",
    ]);
    // Found by its device alias (modules.alias.bin), as udev loads it.
    expect(show("virtio:d00000001v00001AF4").lines.at(-1)).toBe("insmod kernel/drivers/net/virtio_net.ko");
    expect(show("ext4").lines).toEqual(["builtin ext4"]);
    expect(show("hv_sock").code).not.toBe(0);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
