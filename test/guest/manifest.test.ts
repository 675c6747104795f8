// assets/guest/manifest.json is what src/inject reads to put banger's guest files into images.
// These tests keep it and the files beside it in step: every file listed, nothing listed that
// isn't there, modes that match the files' executable bits, and enable links that agree with
// the units' own [Install] sections.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { GUEST } from "./lib.ts";

type InitKind = "systemd" | "banger-init";

interface ManifestFile {
  path: string;
  mode: string;
  for: InitKind[];
}

interface ManifestLink {
  path: string;
  target: string;
  for: InitKind[];
}

interface Manifest {
  files: ManifestFile[];
  links: ManifestLink[];
}

const KINDS: readonly string[] = ["systemd", "banger-init"];

function loadManifest(): Manifest {
  // Parsed as unknown and checked field by field below: the file is hand-written.
  const raw: unknown = JSON.parse(readFileSync(join(GUEST, "manifest.json"), "utf8"));
  if (typeof raw !== "object" || raw === null) throw new Error("manifest is not an object");
  return raw as Manifest;
}

/** Guest paths of every file under assets/guest except the manifest itself. */
function filesOnDisk(dir = GUEST): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesOnDisk(p));
    else out.push("/" + relative(GUEST, p));
  }
  return out.filter((p) => p !== "/manifest.json").sort();
}

/** The values of `key=` lines in one section of a unit file. */
function unitValues(text: string, section: string, key: string): string[] {
  let current = "";
  const values: string[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t.startsWith("[")) current = t;
    else if (current === `[${section}]` && t.startsWith(`${key}=`)) values.push(...t.slice(key.length + 1).split(/\s+/).filter(Boolean));
  }
  return values;
}

const manifest = loadManifest();

describe("assets/guest/manifest.json", () => {
  test("has the documented shape", () => {
    expect(Object.keys(manifest).sort()).toEqual(["files", "links"]);
    for (const f of manifest.files) {
      expect(Object.keys(f).sort()).toEqual(["for", "mode", "path"]);
      expect(f.path).toMatch(/^\/[^\s]+$/);
      expect(["0755", "0644"]).toContain(f.mode);
      expect(f.for.length).toBeGreaterThan(0);
      for (const k of f.for) expect(KINDS).toContain(k);
    }
    for (const l of manifest.links) {
      expect(Object.keys(l).sort()).toEqual(["for", "path", "target"]);
      expect(l.for).toEqual(["systemd"]);
    }
    const paths = [...manifest.files.map((f) => f.path), ...manifest.links.map((l) => l.path)];
    expect(new Set(paths).size).toBe(paths.length);
  });

  test("lists every file under assets/guest, and only those", () => {
    expect(manifest.files.map((f) => f.path).sort()).toEqual(filesOnDisk());
  });

  test("modes match the files' executable bits (git keeps those)", () => {
    for (const f of manifest.files) {
      const executable = (statSync(join(GUEST, f.path)).mode & 0o111) !== 0;
      expect(`${f.path} ${executable ? "0755" : "0644"}`).toBe(`${f.path} ${f.mode}`);
    }
  });

  test("executables are POSIX sh scripts", () => {
    for (const f of manifest.files.filter((x) => x.mode === "0755")) {
      expect(`${f.path}: ${readFileSync(join(GUEST, f.path), "utf8").split("\n")[0]}`).toBe(`${f.path}: #!/bin/sh`);
    }
  });

  test("banger-init guests get banger-init and the scripts it runs; systemd guests the units", () => {
    const kinds = (p: string): InitKind[] => manifest.files.find((f) => f.path === p)?.for ?? [];
    expect(kinds("/usr/local/libexec/banger-init")).toEqual(["banger-init"]);
    for (const p of ["/usr/local/libexec/banger-network-bootstrap", "/usr/local/libexec/banger-first-boot", "/usr/local/bin/banger-vsock-agent"]) {
      expect(kinds(p).sort()).toEqual(["banger-init", "systemd"]);
    }
    for (const f of manifest.files.filter((x) => x.path.startsWith("/etc/systemd/") || x.path.startsWith("/etc/modules-load.d/"))) {
      expect(f.for).toEqual(["systemd"]);
    }
  });

  test("each link is NAME.wants/UNIT -> a listed unit whose [Install] WantedBy names NAME", () => {
    const units = manifest.files.filter((f) => f.path.startsWith("/etc/systemd/system/"));
    for (const l of manifest.links) {
      const target = units.find((u) => u.path === l.target);
      expect(target?.path).toBe(l.target);
      expect(basename(l.path)).toBe(basename(l.target));
      const wantsDir = basename(dirname(l.path));
      expect(dirname(dirname(l.path))).toBe("/etc/systemd/system");
      expect(wantsDir).toMatch(/\.wants$/);
      const wantedBy = unitValues(readFileSync(join(GUEST, l.target), "utf8"), "Install", "WantedBy");
      expect(wantedBy).toContain(wantsDir.replace(/\.wants$/, ""));
    }
    // ...and every unit with an [Install] section has its links.
    for (const u of units) {
      for (const w of unitValues(readFileSync(join(GUEST, u.path), "utf8"), "Install", "WantedBy")) {
        const link = `/etc/systemd/system/${w}.wants/${basename(u.path)}`;
        expect(manifest.links.map((l) => l.path)).toContain(link);
      }
    }
  });

  test("units run programs the manifest installs, executable, on systemd guests", () => {
    for (const u of manifest.files.filter((f) => f.path.endsWith(".service"))) {
      const exec = unitValues(readFileSync(join(GUEST, u.path), "utf8"), "Service", "ExecStart");
      expect(exec.length).toBeGreaterThan(0);
      const program = manifest.files.find((f) => f.path === exec[0]);
      expect(program?.mode).toBe("0755");
      expect(program?.for).toContain("systemd");
    }
  });

  test("modules-load.d lists vsock's virtio transport and vsock", () => {
    const text = readFileSync(join(GUEST, "/etc/modules-load.d/banger-vsock.conf"), "utf8");
    const modules = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    expect(modules).toEqual(["vmw_vsock_virtio_transport", "vsock"]);
  });
});
