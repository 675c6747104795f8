// A virtual machine monitor to boot images with: Firecracker, or QEMU for the host's architecture.
import type { Check, CheckResult, DoctorContext } from "./types.ts";

/** QEMU's name for the architecture process.arch calls `arch`. */
export function qemuArch(arch: string): string {
  return { x64: "x86_64", arm64: "aarch64", ia32: "i386" }[arch] ?? arch;
}

export const vmmCheck: Check = {
  id: "vmm",
  async run(ctx: DoctorContext): Promise<CheckResult> {
    const qemu = `qemu-system-${qemuArch(ctx.arch)}`;
    const found = ["firecracker", qemu].flatMap((name) => {
      const at = ctx.probe.which(name);
      return at === null ? [] : [`${name} (${at})`];
    });
    if (found.length > 0) return { status: "pass", summary: found.join(", ") };
    return {
      status: "warn",
      summary: `neither firecracker nor ${qemu} is on PATH: images can be built but not booted here`,
      fix: `install Firecracker (https://github.com/firecracker-microvm/firecracker/releases) or QEMU (Debian/Ubuntu: \`sudo apt-get install ${qemu === "qemu-system-x86_64" ? "qemu-system-x86" : "qemu-system-arm"}\`)`,
    };
  },
};
