// The documented entry point, `bun run banger`, is a package.json script that also sets a JSC
// tuning option (see README, Speed). Bun refuses to start when such an option is unknown, so a
// Bun upgrade that dropped it would break every command: this catches that.
import { expect, test } from "bun:test";
import { REPO_ROOT } from "./lib.ts";

test("`bun run banger` starts and prints the command list", async () => {
  const p = Bun.spawn([process.execPath, "run", "--silent", "banger", "--help"], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(stderr).not.toContain("invalid JSC environment variable");
  expect(code).toBe(0);
  expect(stdout).toContain("internal make-ext4");
});

test("Bun accepts the script's JSC option (it refuses to start on an unknown one)", async () => {
  const pkg = (await Bun.file(`${REPO_ROOT}/package.json`).json()) as { scripts: Record<string, string> };
  const option = /^(BUN_JSC_\w+)=(\S+) bun src\/cli\/launch\.ts$/.exec(pkg.scripts.banger!);
  expect(option).not.toBeNull();
  const p = Bun.spawn([process.execPath, "-e", "process.stdout.write(String(process.env." + option![1] + "))"], {
    cwd: REPO_ROOT,
    env: { ...process.env, [option![1]!]: option![2]! },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  expect(stdout).toBe(option![2]!);
});
