// Every guest script parses (`sh -n`) under dash and under busybox sh: a syntax error in PID 1
// or in a boot-time script would only show as a guest that never comes up.
import { describe, expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { eachShell, GUEST } from "./lib.ts";

interface Entry {
  path: string;
  mode: string;
}

const scripts = (JSON.parse(readFileSync(join(GUEST, "manifest.json"), "utf8")) as { files: Entry[] }).files
  .filter((f) => f.mode === "0755")
  .map((f) => f.path);

describe("guest scripts parse", () => {
  for (const path of scripts) {
    eachShell(`sh -n ${path}`, (sh) => {
      const r = Bun.spawnSync([...sh.argv(), "-n", join(GUEST, path)]);
      expect(`${r.exitCode} ${r.stderr.toString()}`).toBe("0 ");
    });
  }
});
