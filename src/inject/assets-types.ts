// The shape of assets/guest/manifest.json, and the guest paths other code relies on.

/** How an image boots: its own systemd, or banger's sh PID 1. */
export type InitKind = "systemd" | "banger-init";

export interface GuestFile {
  /** Absolute guest path. */
  path: string;
  mode: number;
  /** Which images get it. */
  for: InitKind[];
  text: string;
}

export interface GuestLink {
  path: string;
  target: string;
  for: InitKind[];
}

export interface GuestAssets {
  files: GuestFile[];
  links: GuestLink[];
}

export const BANGER_INIT_PATH = "/usr/local/libexec/banger-init";
export const NETWORK_CONF_PATH = "/etc/banger-network.conf";
export const FIRST_BOOT_MARKER = "/var/lib/banger/first-boot-pending";
