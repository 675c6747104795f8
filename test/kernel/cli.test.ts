// The kernel commands' surface as a process: --help for each (usage, every option, exit 0),
// `banger kernel` listing them, --json on an empty store, usage errors exiting 2; and the pull's
// progress renderer on a pipe and on a terminal.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KernelPullRenderer } from "../../src/cli/commands/kernel.ts";
import { banger, xdgEnv } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-cli-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const env = xdgEnv(tmp);

const COMMANDS: [string[], string[]][] = [
  [["kernel", "register"], ["--name", "--kernel", "--initrd", "--modules", "--quiet", "--json"]],
  [["kernel", "pull"], ["--name", "--quiet", "--json"]],
  [["kernel", "list"], ["--json"]],
  [["kernel", "show"], ["--json"]],
  [["kernel", "rm"], ["--quiet", "--json"]],
  [["internal", "make-kernel-bundle"], ["--kernel", "--initrd", "--modules", "--level", "--out", "--json"]],
];

test("--help of each command: its usage line and every option, exit 0, nothing done", async () => {
  for (const [words, options] of COMMANDS) {
    const r = await banger([...words, "--help"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`usage: banger ${words.join(" ")}`);
    for (const o of options) expect(r.stdout).toContain(`  ${o}`);
    expect(r.stderr).toBe("");
  }
  expect(fs.existsSync(path.join(tmp, "state"))).toBe(false);
});

test("`banger kernel --help` lists the five kernel commands; `banger --help` lists make-kernel-bundle", async () => {
  const r = await banger(["kernel", "--help"], env);
  expect(r.code).toBe(0);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("  kernel "));
  expect(lines.map((l) => l.trim().split(/\s+/).slice(0, 2).join(" "))).toEqual(["kernel register", "kernel pull", "kernel list", "kernel show", "kernel rm"]);
  const all = await banger(["--help"], env);
  expect(all.stdout).toContain("internal make-kernel-bundle");
});

test("--json on an empty store; usage errors exit 2 with the command's help", async () => {
  const list = await banger(["kernel", "list", "--json"], env);
  expect(list.code).toBe(0);
  expect(JSON.parse(list.stdout)).toEqual([]);
  const text = await banger(["kernel", "list"], env);
  expect(text.stdout.trim()).toBe("NAME  ID  VERSION  ARCH  INITRD  MODULES  CREATED  SOURCE");
  const noName = await banger(["kernel", "register", "--kernel", "/boot/x"], env);
  expect(noName.code).toBe(2);
  expect(noName.stderr).toStartWith("banger kernel register: missing required option --name\n\nusage: banger kernel register");
  const noArg = await banger(["kernel", "pull"], env);
  expect(noArg.code).toBe(2);
  expect(noArg.stderr).toStartWith("banger kernel pull: missing <name>");
  const extra = await banger(["kernel", "show", "a", "b"], env);
  expect(extra.stderr).toStartWith('banger kernel show: unexpected argument "b"');
});

test("the pull renderer: one line per step on a pipe; one line redrawn on a terminal", () => {
  let t = 0;
  const events = [
    { type: "phase", phase: "download", detail: "http://x/k.tar.zst" },
    { type: "download", bytesDone: 0, bytesTotal: 4 << 20, state: "downloading" },
    { type: "download", bytesDone: 1 << 20, bytesTotal: 4 << 20, state: "downloading" },
    { type: "download", bytesDone: 1 << 20, bytesTotal: 4 << 20, state: "retrying", reason: "connection reset" },
    { type: "download", bytesDone: 1 << 20, bytesTotal: 4 << 20, state: "resuming" },
    { type: "download", bytesDone: 4 << 20, bytesTotal: 4 << 20, state: "downloading" },
    { type: "download", bytesDone: 4 << 20, bytesTotal: 4 << 20, state: "done" },
    { type: "phase", phase: "unpack" },
    { type: "phase", phase: "publish", detail: "k" },
  ] as const;
  const plain: string[] = [];
  // One second between events.
  const p = new KernelPullRenderer({ write: (s: string) => plain.push(s) }, () => t);
  for (const e of events) {
    t += 1000;
    p.event(e);
  }
  p.done();
  expect(plain.join("")).toBe(
    [
      "download: http://x/k.tar.zst",
      "downloading 4.0 MiB",
      "retrying after 1.0 MiB: connection reset",
      "resuming at 1.0 MiB of 4.0 MiB",
      "downloaded 4.0 MiB in 5.0 s",
      "unpack",
      "publish: k",
      "",
    ].join("\n"),
  );
  const tty: string[] = [];
  const r = new KernelPullRenderer({ write: (s: string) => tty.push(s), isTTY: true }, () => t);
  for (const e of events) {
    t += 1000;
    r.event(e);
  }
  r.done();
  const out = tty.join("");
  expect(out).toContain("\r\x1b[2K  [######------------------] 1.0 MiB / 4.0 MiB  retrying: connection reset");
  expect(out).toContain("[########################] 4.0 MiB / 4.0 MiB  done in");
  // Phases start on a line of their own after the redrawn one.
  expect(out).toContain("done in 5.0 s\nunpack\npublish: k\n");
});
