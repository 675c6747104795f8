// The kernel modules a guest needs at boot (virtio devices, vsock for the agent), taken from an
// attached kernel's modules tree with everything they depend on (modules.dep), to be written
// under /lib/modules/<version>/ as part of the guest layer, with index files filtered to the
// modules present: the text ones, and the binary ones libkmod (modprobe, systemd-modules-load)
// actually reads (kmod-index.ts), so the image needs no depmod.
import fs from "node:fs";
import path from "node:path";
import { kmodIndex } from "./kmod-index.ts";

/** virtio disks, network, console, entropy; vsock and its virtio transport (the agent). */
export const GUEST_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "vsock", "vmw_vsock_virtio_transport"];

const TEXT_INDEXES = ["modules.builtin", "modules.builtin.modinfo", "modules.softdep"];

export interface ModuleSelection {
  version: string;
  /** Guest paths (/lib/modules/<version>/...) and their bytes. */
  files: { path: string; bytes: Uint8Array }[];
  /** Wanted modules the kernel builds in (nothing to add). */
  builtin: string[];
  /** Wanted modules this kernel has neither as a module nor built in. */
  missing: string[];
}

/** Module name as kmod compares them: file name without .ko[.xz|.zst|.gz], "-" as "_". */
function moduleName(file: string): string {
  return path.basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, "").replace(/-/g, "_");
}

/** The lib/modules/<version> directory inside `dir` (which may be that directory itself). */
export function findModulesVersionDir(dir: string): string {
  if (fs.existsSync(path.join(dir, "modules.dep"))) return dir;
  for (const base of [path.join(dir, "lib", "modules"), dir]) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(base);
    } catch {
      continue;
    }
    const found = names.filter((n) => fs.existsSync(path.join(base, n, "modules.dep")));
    if (found.length === 1) return path.join(base, found[0]!);
    if (found.length > 1) throw new Error(`${base}: modules for several kernels (${found.join(", ")}); attach one`);
  }
  throw new Error(`${dir}: no modules.dep found (expected a lib/modules/<version> tree)`);
}

export function selectGuestModules(modulesDir: string, wanted: string[] = GUEST_MODULES): ModuleSelection {
  const root = findModulesVersionDir(modulesDir);
  const version = path.basename(root);
  const read = (f: string) => fs.readFileSync(path.join(root, f), "utf8");
  const deps = new Map<string, { file: string; deps: string[] }>();
  for (const line of read("modules.dep").split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const file = line.slice(0, colon);
    deps.set(moduleName(file), { file, deps: line.slice(colon + 1).trim().split(/\s+/).filter(Boolean) });
  }
  const builtinText = fs.existsSync(path.join(root, "modules.builtin")) ? read("modules.builtin") : "";
  const builtinNames = new Set(builtinText.split("\n").filter(Boolean).map(moduleName));
  const chosen = new Set<string>(); // module file paths, relative
  const builtin: string[] = [];
  const missing: string[] = [];
  for (const name of wanted) {
    const entry = deps.get(name);
    if (!entry) {
      (builtinNames.has(name) ? builtin : missing).push(name);
      continue;
    }
    chosen.add(entry.file);
    for (const d of entry.deps) chosen.add(d);
  }
  const base = `/lib/modules/${version}`;
  const enc = new TextEncoder();
  const files: ModuleSelection["files"] = [...chosen].sort().map((rel) => ({ path: `${base}/${rel}`, bytes: new Uint8Array(fs.readFileSync(path.join(root, rel))) }));
  const names = new Set([...chosen].map(moduleName));
  const depLines = read("modules.dep").split("\n").filter((l) => chosen.has(l.slice(0, l.indexOf(":"))));
  files.push({ path: `${base}/modules.dep`, bytes: enc.encode(depLines.join("\n") + "\n") });
  // Keyed by module name, the value the text line; priority = position, as depmod orders them.
  files.push({ path: `${base}/modules.dep.bin`, bytes: kmodIndex(depLines.map((l, i) => ({ key: moduleName(l.slice(0, l.indexOf(":"))), value: l, priority: i }))) });
  files.push({ path: `${base}/modules.builtin.bin`, bytes: kmodIndex([...builtinNames].map((name) => ({ key: name, value: "", priority: 0 }))) });
  if (fs.existsSync(path.join(root, "modules.alias"))) {
    const aliases = read("modules.alias").split("\n").filter((l) => l.startsWith("alias ") && names.has(l.slice(l.lastIndexOf(" ") + 1)));
    files.push({ path: `${base}/modules.alias`, bytes: enc.encode(aliases.join("\n") + "\n") });
    const aliasEntries = aliases.map((l, i) => {
      const [, pattern, name] = l.split(" ");
      return { key: pattern!, value: name!, priority: i };
    });
    files.push({ path: `${base}/modules.alias.bin`, bytes: kmodIndex(aliasEntries) });
  }
  if (fs.existsSync(path.join(root, "modules.order"))) {
    const order = read("modules.order").split("\n").filter((l) => chosen.has(l));
    files.push({ path: `${base}/modules.order`, bytes: enc.encode(order.join("\n") + "\n") });
  }
  for (const f of TEXT_INDEXES) {
    if (fs.existsSync(path.join(root, f))) files.push({ path: `${base}/${f}`, bytes: new Uint8Array(fs.readFileSync(path.join(root, f))) });
  }
  return { version, files, builtin, missing };
}
