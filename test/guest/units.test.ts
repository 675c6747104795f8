// The systemd units, checked by systemd itself: `systemd-analyze verify` loads them from a temp
// root laid out like a guest (the host's own unit directory copied in for sysinit.target & co.,
// banger's files and enable links as src/inject will write them), once unit by unit and once as
// the boot transaction of multi-user.target, which is where an ordering cycle would show.
import { describe, expect } from "bun:test";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll } from "bun:test";
import { testWith } from "../helpers/env.ts";
import { GUEST } from "./lib.ts";

interface Manifest {
  files: { path: string; mode: string; for: string[] }[];
  links: { path: string; target: string; for: string[] }[];
}

const manifest = JSON.parse(await Bun.file(join(GUEST, "manifest.json")).text()) as Manifest;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function systemdGuestRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "banger-units-"));
  dirs.push(root);
  // The distribution's units (targets, slices) that ours order against and are pulled in by.
  const hostUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(join(d, "multi-user.target")));
  if (!hostUnits) throw new Error("no systemd unit directory with multi-user.target on this host");
  cpSync(realpathSync(hostUnits), join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  for (const f of manifest.files.filter((x) => x.for.includes("systemd"))) {
    const dest = join(root, f.path);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(join(GUEST, f.path), dest);
    chmodSync(dest, parseInt(f.mode, 8));
  }
  for (const l of manifest.links.filter((x) => x.for.includes("systemd"))) {
    mkdirSync(dirname(join(root, l.path)), { recursive: true });
    symlinkSync(l.target, join(root, l.path));
  }
  return root;
}

function verify(root: string, units: string[]): { code: number; output: string } {
  const r = Bun.spawnSync(["systemd-analyze", "verify", "--man=no", `--root=${root}`, ...units], {
    env: { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "" },
  });
  return { code: r.exitCode, output: r.stdout.toString() + r.stderr.toString() };
}

/** Lines that concern banger's units, or problems no unit may have. */
function complaints(output: string): string[] {
  return output.split("\n").filter((l) => /banger|ordering cycle|Unknown (key|section)|bad unit file setting/i.test(l));
}

describe("systemd units", () => {
  testWith({ tools: ["systemd-analyze"] }, "each unit passes systemd-analyze verify", () => {
    const root = systemdGuestRoot();
    const units = manifest.files.filter((f) => /\.(service|socket)$/.test(f.path)).map((f) => join(root, f.path));
    const r = verify(root, units);
    expect(complaints(r.output)).toEqual([]);
    expect(r.code).toBe(0);
  });

  testWith({ tools: ["systemd-analyze"] }, "multi-user.target with the enable links: no ordering cycle", () => {
    const root = systemdGuestRoot();
    const r = verify(root, ["multi-user.target"]);
    expect(complaints(r.output)).toEqual([]);
    expect(r.code).toBe(0);
  });
});
