// The embedded guest files (src/inject/assets.ts) are exactly assets/guest/ as the manifest lists it.
import { expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { GUEST_ASSETS } from "../../src/inject/index.ts";

const ROOT = join(import.meta.dir, "../../assets/guest");
const manifest = JSON.parse(readFileSync(join(ROOT, "manifest.json"), "utf8")) as { files: { path: string; mode: string; for: string[] }[]; links: unknown[] };

test("every manifest file is embedded with its content and mode, nothing else", () => {
  expect(GUEST_ASSETS.files.map((f) => f.path)).toEqual(manifest.files.map((f) => f.path));
  for (const f of GUEST_ASSETS.files) {
    expect(f.text).toBe(readFileSync(join(ROOT, f.path), "utf8"));
    expect(f.mode).toBe(statSync(join(ROOT, f.path)).mode & 0o777);
  }
  expect(GUEST_ASSETS.links.length).toBe(manifest.links.length);
});

test("banger-init images get a poweroff that asks banger-init; systemd images keep their own", () => {
  const p = GUEST_ASSETS.files.find((f) => f.path === "/usr/local/sbin/poweroff")!;
  expect(p.for).toEqual(["banger-init"]);
  expect(p.text).toContain("exec /usr/local/libexec/banger-init stop");
});
