// KVM: what Firecracker, and QEMU at any useful speed, boot on. Building images needs none of it.
import type { Check, CheckResult, DoctorContext } from "./types.ts";

const KVM = "/dev/kvm";
const BUILD_STILL_WORKS = "images can still be built here, not booted";

function loadModuleFix(arch: string): string {
  // kvm_intel/kvm_amd exist only on x86; arm64 kernels have KVM built in or not at all.
  if (arch === "x64" || arch === "ia32") {
    return "enable virtualization (VT-x/AMD-V) in the firmware and load the module: `sudo modprobe kvm_intel` (or kvm_amd); in a VM, turn on nested virtualization";
  }
  return "run a kernel with KVM support, on a machine (or a VM with nested virtualization) that offers it";
}

export const kvmCheck: Check = {
  id: "kvm",
  async run(ctx: DoctorContext): Promise<CheckResult> {
    const kind = ctx.probe.kind(KVM);
    if (kind === null) return { status: "fail", summary: `${KVM} does not exist: no KVM on this host (${BUILD_STILL_WORKS})`, fix: loadModuleFix(ctx.arch) };
    if (kind !== "char-device") return { status: "fail", summary: `${KVM} is a ${kind}, not the KVM device (${BUILD_STILL_WORKS})`, fix: `remove it, then ${loadModuleFix(ctx.arch)}` };
    if (!ctx.probe.canReadWrite(KVM)) {
      return {
        status: "fail",
        summary: `${KVM} exists but this user cannot open it read-write (${BUILD_STILL_WORKS})`,
        // The new group applies to new logins only, which is the usual "still denied" surprise.
        fix: "add yourself to the kvm group: `sudo usermod -aG kvm $USER`, then log in again (or `newgrp kvm`)",
      };
    }
    return { status: "pass", summary: `${KVM} is usable` };
  },
};
