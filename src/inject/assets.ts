// banger's guest files, embedded at build time from assets/guest/ (the one source of truth:
// assets/guest/manifest.json says which images get which file, with what mode). Each file is a
// static text import so the bundle (src/cli/launch.ts) carries it; test/inject/assets.test.ts
// checks that this list and the manifest agree.
import manifest from "../../assets/guest/manifest.json" with { type: "json" };
import f0 from "../../assets/guest/usr/local/libexec/banger-init" with { type: "text" };
import f1 from "../../assets/guest/usr/local/libexec/banger-network-bootstrap" with { type: "text" };
import f2 from "../../assets/guest/usr/local/libexec/banger-first-boot" with { type: "text" };
import f3 from "../../assets/guest/usr/local/bin/banger-vsock-agent" with { type: "text" };
import f4 from "../../assets/guest/usr/local/sbin/poweroff" with { type: "text" };
import f5 from "../../assets/guest/etc/systemd/system/banger-network.service" with { type: "text" };
import f6 from "../../assets/guest/etc/systemd/system/banger-first-boot.service" with { type: "text" };
import f7 from "../../assets/guest/etc/systemd/system/banger-vsock-agent.socket" with { type: "text" };
import f8 from "../../assets/guest/etc/systemd/system/banger-vsock-agent@.service" with { type: "text" };
import f9 from "../../assets/guest/etc/modules-load.d/banger-vsock.conf" with { type: "text" };
import type { GuestAssets, InitKind } from "./assets-types.ts";

const TEXTS: Record<string, string> = {
  "/usr/local/libexec/banger-init": f0,
  "/usr/local/libexec/banger-network-bootstrap": f1,
  "/usr/local/libexec/banger-first-boot": f2,
  "/usr/local/bin/banger-vsock-agent": f3,
  "/usr/local/sbin/poweroff": f4,
  "/etc/systemd/system/banger-network.service": f5,
  "/etc/systemd/system/banger-first-boot.service": f6,
  "/etc/systemd/system/banger-vsock-agent.socket": f7,
  "/etc/systemd/system/banger-vsock-agent@.service": f8,
  "/etc/modules-load.d/banger-vsock.conf": f9,
};

interface ManifestFile {
  path: string;
  mode: string;
  for: string[];
}

function kinds(list: string[], where: string): InitKind[] {
  for (const k of list) if (k !== "systemd" && k !== "banger-init") throw new Error(`assets/guest/manifest.json: ${where}: unknown init kind "${k}"`);
  return list as InitKind[];
}

function load(): GuestAssets {
  const files = (manifest.files as ManifestFile[]).map((f) => {
    const text = TEXTS[f.path];
    if (text === undefined) throw new Error(`assets/guest/manifest.json lists ${f.path}, which src/inject/assets.ts does not embed`);
    return { path: f.path, mode: parseInt(f.mode, 8), for: kinds(f.for, f.path), text };
  });
  const links = manifest.links.map((l) => ({ path: l.path, target: l.target, for: kinds(l.for, l.path) }));
  return { files, links };
}

/** The guest files as shipped with this banger. */
export const GUEST_ASSETS: GuestAssets = load();
