// Boots a pulled image under QEMU with Debian's cloud kernel (package linux-image-cloud-amd64:
// its initrd loads virtio before switching root), the way ../shared/guest-notes.md describes:
// user networking (guest 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3), a loopback port
// forwarded to guest port 22, the serial console captured. KVM when /dev/kvm is usable, TCG
// otherwise (see kvmUsable). The image is booted from a sparse copy, so the store's file is never changed.
import { accessSync, constants, copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mountImage } from "./kernel-compare.ts";
import { freePort } from "./registry.ts";

export const QEMU_TOOLS = ["qemu-system-x86_64", "ssh", "mount", "umount", "losetup", "cp"];

/** The cloud kernel and its initrd from /boot, or null when the package is missing. */
export function cloudKernel(): { kernel: string; initrd: string } | null {
  let names: string[];
  try {
    names = readdirSync("/boot");
  } catch {
    return null;
  }
  const kernel = names.filter((n) => /^vmlinuz-.*cloud/.test(n)).sort().at(-1);
  const initrd = names.filter((n) => /^initrd\.img-.*cloud/.test(n)).sort().at(-1);
  return kernel && initrd ? { kernel: join("/boot", kernel), initrd: join("/boot", initrd) } : null;
}

/**
 * KVM only when asked (BANGER_TEST_KVM=1) and /dev/kvm is usable: on this project's (nested)
 * machines /dev/kvm opens but the guest kernel dies at once ("KVM internal error. Suberror: 1",
 * emulation failure), with and without -cpu host, while TCG boots a banger-init guest in ~6 s.
 */
function kvmUsable(): boolean {
  if (process.env.BANGER_TEST_KVM !== "1") return false;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export const QEMU_NETWORK_CONF = "BANGER_ADDRESS=10.0.2.15/24\nBANGER_GATEWAY=10.0.2.2\nBANGER_DNS=10.0.2.3\nBANGER_HOSTNAME=banger-guest\n";

/**
 * A bootable copy of `rootfs` in `dir`, with /etc/banger-network.conf written into it (loop
 * mount, root): what banger's VM layer will do per VM.
 */
export async function vmDisk(rootfs: string, dir: string, networkConf = QEMU_NETWORK_CONF): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const disk = join(dir, "disk.ext4");
  const cp = Bun.spawnSync(["cp", "--sparse=always", rootfs, disk]);
  if (cp.exitCode !== 0) copyFileSync(rootfs, disk);
  await mountImage(
    disk,
    (mnt) => {
      writeFileSync(join(mnt, "etc/banger-network.conf"), networkConf, { mode: 0o644 });
    },
    { readWrite: true },
  );
  return disk;
}

export interface Vm {
  /** Everything the serial console printed so far. */
  console(): string;
  /** Resolves with the console text once `re` matches it; rejects on timeout or QEMU exit. */
  waitFor(re: RegExp, timeoutMs: number): Promise<string>;
  /** Runs a command over SSH as root with banger's key. */
  ssh(command: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Retries ssh until a login works (sshd up, key accepted). */
  waitForSsh(timeoutMs: number): Promise<void>;
  /** QEMU's exit code. */
  exited: Promise<number>;
  kill(): Promise<void>;
  accel: "kvm" | "tcg";
}

export async function bootVm(opts: { disk: string; append: string; privateKey: string; memMiB?: number }): Promise<Vm> {
  const k = cloudKernel();
  if (!k) throw new Error("no cloud kernel in /boot (apt-get install linux-image-cloud-amd64)");
  const port = await freePort();
  const accel = kvmUsable() ? "kvm" : "tcg";
  const argv = [
    "qemu-system-x86_64",
    "-accel", accel,
    "-m", String(opts.memMiB ?? 1024),
    "-smp", "2",
    "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
    "-kernel", k.kernel, "-initrd", k.initrd,
    "-append", `${opts.append} panic=-1`,
    "-drive", `file=${opts.disk},format=raw,if=virtio`,
    "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`,
    "-device", "virtio-net-pci,netdev=n0",
  ];
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      text += dec.decode(chunk, { stream: true });
      for (const w of waiters) w();
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  let ended = false;
  const exited = proc.exited.then((code) => {
    ended = true;
    for (const w of waiters) w();
    return code;
  });
  const sshArgs = (command: string) => [
    "ssh", "-i", opts.privateKey, "-p", String(port),
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    "root@127.0.0.1", command,
  ];
  const vm: Vm = {
    accel,
    exited,
    console: () => text,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(text)) {
            done();
            resolve(text);
          } else if (ended) {
            done();
            reject(new Error(`QEMU exited before the console showed ${re}; console:\n${text.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${re} on the console within ${timeoutMs} ms; console:\n${text.slice(-4000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async ssh(command, timeoutMs = 60_000) {
      const p = Bun.spawn(sshArgs(command), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => p.kill(), timeoutMs);
      const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      clearTimeout(timer);
      return { code, stdout, stderr };
    },
    async waitForSsh(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < deadline) {
        if (ended || /KVM internal error|Kernel panic/.test(text)) throw new Error(`the VM died while waiting for SSH; console:\n${text.slice(-4000)}`);
        const r = await vm.ssh("true", 20_000);
        if (r.code === 0) return;
        last = r.stderr.trim();
        await Bun.sleep(2000);
      }
      throw new Error(`no SSH login within ${timeoutMs} ms (last: ${last}); console:\n${text.slice(-4000)}`);
    },
    async kill() {
      if (!ended) proc.kill("SIGKILL");
      await exited;
    },
  };
  return vm;
}
