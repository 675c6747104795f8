// Host devices a VM's extras need: vsock (banger talks to its guest agent) and tap (networking).
// Neither stops a boot, so a missing one is a warning.
import type { Check, CheckResult, DoctorContext } from "./types.ts";

interface DeviceSpec {
  id: string;
  device: string;
  /** What it is for, in the summary. */
  purpose: string;
  module: string;
  /** Said when it is missing, to put the warning in proportion. */
  note: string;
}

function deviceCheck(spec: DeviceSpec): Check {
  return {
    id: spec.id,
    async run(ctx: DoctorContext): Promise<CheckResult> {
      const kind = ctx.probe.kind(spec.device);
      if (kind === null) {
        return { status: "warn", summary: `${spec.device} does not exist: no ${spec.purpose} (${spec.note})`, fix: `\`sudo modprobe ${spec.module}\`` };
      }
      if (kind !== "char-device") {
        return { status: "warn", summary: `${spec.device} is a ${kind}, not a device: no ${spec.purpose}`, fix: `remove it, then \`sudo modprobe ${spec.module}\`` };
      }
      if (!ctx.probe.canReadWrite(spec.device)) {
        return {
          status: "warn",
          summary: `${spec.device} exists but this user cannot open it read-write: no ${spec.purpose}`,
          fix: `give it to a group you are in (a udev rule, as for /dev/kvm), or run VMs as root`,
        };
      }
      return { status: "pass", summary: `${spec.device} is usable (${spec.purpose})` };
    },
  };
}

export const vsockCheck = deviceCheck({
  id: "vsock",
  device: "/dev/vhost-vsock",
  purpose: "vsock to the guest agent under QEMU",
  module: "vhost_vsock",
  // Firecracker's vsock is its own device backed by a unix socket; only QEMU's needs vhost.
  note: "Firecracker's vsock does not need it",
});

export const tapCheck = deviceCheck({
  id: "tap",
  device: "/dev/net/tun",
  purpose: "tap devices for VM networking",
  module: "tun",
  note: "VMs would boot without a network",
});
