// Proof by booting: two real Debian images pulled through Debian's docker-registry on 127.0.0.1
// boot under QEMU with Debian's cloud kernel, reach the network through banger's bootstrap and
// take an SSH login with banger's own key. One has systemd (the guest files run as units), one
// has no init system at all (banger-init is PID 1). Starts: docker-registry, the banger CLI,
// mount (root, to write the per-VM network config into a copy), qemu-system-x86_64, ssh.
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { debianNoInitTar, debianRootfsTar } from "../helpers/debian.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { makeLayer } from "../helpers/oci-images.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { imageWithConfig } from "../helpers/pull-fixtures.ts";
import { bootVm, cloudKernel, QEMU_TOOLS, vmDisk, type Vm } from "../helpers/qemu.ts";
import { pushImage, startRegistry, type RunningRegistry } from "../helpers/registry.ts";
import { banger, ctx, pullEnv, pullOk, stopDaemons, type ImageRecord } from "./pull-lib.ts";

const NEEDS = { tools: ["docker-registry", "mmdebstrap", ...QEMU_TOOLS], root: true };
const work = scratchDir("e2e-boot");
const env = pullEnv(work);
let reg: RunningRegistry | undefined;
const vms: Vm[] = [];

/** A one-layer (zstd) image of a rootfs tar, pushed as `guest/debian:TAG`. */
async function pushTar(tar: string, tag: string): Promise<string> {
  const layer = makeLayer(new Uint8Array(readFileSync(tar)), "zstd");
  const img = imageWithConfig([layer], { os: "linux", architecture: "amd64" }, { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/bash"] });
  await pushImage(reg!.url, "guest/debian", img, tag);
  return `${reg!.url.replace(/^https?:\/\//, "")}/guest/debian:${tag}`;
}

let systemdRef = "";
let noInitRef = "";
if (hasTool("docker-registry") && hasTool("mmdebstrap") && cloudKernel()) {
  beforeAll(async () => {
    reg = await startRegistry();
    systemdRef = await pushTar(await debianRootfsTar(), "systemd");
    noInitRef = await pushTar(await debianNoInitTar(), "noinit");
  }, 300_000);
}
afterAll(async () => {
  await stopDaemons();
  for (const vm of vms) await vm.kill();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function pullAndBoot(ref: string, name: string, extra: string[] = []): Promise<{ record: ImageRecord; vm: Vm }> {
  const { record } = await pullOk(ref, env, ["--name", name, ...extra], 180_000);
  const disk = await vmDisk(record.rootfsPath, join(work, `vm-${name}`));
  const vm = await bootVm({ disk, append: record.kernelCmdline!, privateKey: join(env.config, "banger", "ssh", "id_ed25519") });
  vms.push(vm);
  return { record, vm };
}

async function sshOut(vm: Vm, command: string): Promise<string> {
  const r = await vm.ssh(command);
  if (r.code !== 0) throw new Error(`ssh ${JSON.stringify(command)} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

testWith(NEEDS, "a Debian image with systemd boots, its banger units run, SSH takes banger's key", async () => {
  if (!cloudKernel()) throw new Error("no cloud kernel in /boot: .ci/run installs linux-image-cloud-amd64");
  // Debian's cloud kernel, attached with --kernel-ref: its vsock modules go into the image, with
  // kmod indexes banger writes (the image has no depmod), and systemd-modules-load loads them.
  const k = cloudKernel()!;
  const version = k.kernel.replace(/^.*vmlinuz-/, "");
  const reg = await banger(["kernel", "register", "--name", "cloud", "--kernel", k.kernel, "--initrd", k.initrd, "--modules", `/lib/modules/${version}`, "--quiet"], env, 120_000);
  expect(reg.exitCode, ctx(reg)).toBe(0);
  const { record, vm } = await pullAndBoot(systemdRef, "deb-systemd", ["--kernel-ref", "cloud"]);
  expect(record.init).toBe("systemd");
  expect(record.kernelRef).toBe("cloud");
  expect(record.injected).toContain(`/lib/modules/${version}/kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko`);
  expect(record.kernelCmdline).toBe("console=ttyS0 root=/dev/vda rw");
  expect(record.injected).toContain("/etc/systemd/system/multi-user.target.wants/banger-network.service");
  expect(record.workSeedPath !== null && existsSync(record.workSeedPath)).toBe(true);
  await vm.waitForSsh(vm.accel === "kvm" ? 90_000 : 240_000);
  expect(await sshOut(vm, "systemctl is-active banger-network.service")).toBe("active");
  expect(await sshOut(vm, "hostname")).toBe("banger-guest");
  expect(await sshOut(vm, "ip -4 -o addr show")).toContain("10.0.2.15/24");
  expect(await sshOut(vm, "systemctl is-enabled banger-vsock-agent.socket")).toBe("enabled");
  // First boot ran (sshd was present: keys made, marker gone), ordered before the login.
  expect(await sshOut(vm, "test -e /var/lib/banger/first-boot-pending && echo pending || echo done")).toBe("done");
  expect(await sshOut(vm, "stat -c '%U %a' /usr/bin/sudo")).toBe("root 4755");
  expect(await sshOut(vm, "getcap /usr/bin/ping")).toContain("cap_net_raw");
  expect(await sshOut(vm, "systemctl is-active systemd-modules-load.service")).toBe("active");
  expect(await sshOut(vm, "grep -o '^vmw_vsock_virtio_transport ' /proc/modules")).toBe("vmw_vsock_virtio_transport");
  // The attached kernel cannot be removed while the image boots with it.
  const rm = await banger(["kernel", "rm", "cloud"], env);
  expect(rm.exitCode).not.toBe(0);
  expect(rm.stderr).toContain("deb-systemd");
  const failed = await sshOut(vm, "systemctl --failed --no-legend --plain | awk '{print $1}'");
  expect(failed.split("\n").filter((u) => u.startsWith("banger"))).toEqual([]);
  await vm.ssh("systemctl poweroff", 10_000);
  const code = await Promise.race([vm.exited, Bun.sleep(60_000).then(() => "timeout")]);
  expect(code).not.toBe("timeout");
}, 600_000);

testWith(NEEDS, "a Debian image with no init system boots through banger-init; poweroff over SSH ends QEMU", async () => {
  if (!cloudKernel()) throw new Error("no cloud kernel in /boot: .ci/run installs linux-image-cloud-amd64");
  const { record, vm } = await pullAndBoot(noInitRef, "deb-noinit");
  expect(record.init).toBe("banger-init");
  expect(record.kernelCmdline).toBe("console=ttyS0 root=/dev/vda rw init=/usr/local/libexec/banger-init");
  await vm.waitForSsh(vm.accel === "kvm" ? 90_000 : 240_000);
  expect(await sshOut(vm, "cat /proc/1/cmdline | tr '\\0' ' '")).toContain("banger-init");
  expect(await sshOut(vm, "hostname")).toBe("banger-guest");
  expect(await sshOut(vm, "ip -4 -o addr show")).toContain("10.0.2.15/24");
  expect(await sshOut(vm, "ip route show default")).toContain("via 10.0.2.2");
  expect(await sshOut(vm, "cat /etc/resolv.conf")).toContain("nameserver 10.0.2.3");
  expect(await sshOut(vm, "test -e /var/lib/banger/first-boot-pending && echo pending || echo done")).toBe("done");
  const t0 = Date.now();
  await vm.ssh("poweroff", 10_000);
  const code = await Promise.race([vm.exited, Bun.sleep(30_000).then(() => "timeout")]);
  expect(code).not.toBe("timeout");
  expect(Date.now() - t0).toBeLessThan(30_000);
  // A clean power-off, not PID 1 dying (that would be a kernel panic on the console).
  expect(vm.console()).not.toContain("Attempted to kill init");
}, 600_000);
