// Which way an image boots, decided from its merged tree: systemd when /sbin/init resolves to
// a systemd binary (Debian's init-system package makes it a symlink to /lib/systemd/systemd,
// through the /sbin -> usr/sbin link of merged-/usr), banger's own sh PID 1 otherwise.
import { resolvePath, type FsNode } from "../tree/index.ts";
import { BANGER_INIT_PATH, type InitKind } from "./assets-types.ts";

export interface InitChoice {
  kind: InitKind;
  /** What /sbin/init resolved to, when it exists. */
  imageInit: string | null;
}

export function detectInit(root: FsNode): InitChoice {
  const init = resolvePath(root, "/sbin/init");
  const imageInit = init && init.node.kind === "file" ? init.path : null;
  const isSystemd = imageInit !== null && /(^|\/)systemd$/.test(imageInit);
  return { kind: isSystemd ? "systemd" : "banger-init", imageInit };
}

/** The kernel command line banger boots the image with (root on the first virtio disk). */
export function kernelCommandLine(kind: InitKind): string {
  const base = "console=ttyS0 root=/dev/vda rw";
  return kind === "systemd" ? base : `${base} init=${BANGER_INIT_PATH}`;
}
