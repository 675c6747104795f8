// Shared by the guest script tests: the shells each script must work under, temp guest roots,
// recording stub commands, and a runner with a controlled PATH and environment.
//
// Every guest script takes its file paths from BANGER_ROOT (a temp dir here) and its commands
// from PATH, so a test decides exactly which tools "the image" has: real ones linked in by
// name, and stubs that append "name args..." to $BANGER_TEST_LOG.
import { afterAll } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { testWith } from "../helpers/env.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const GUEST = join(REPO_ROOT, "assets/guest");

/** Path of a guest asset in the repo, from its guest path. */
export function asset(guestPath: string): string {
  return join(GUEST, guestPath);
}

export const SCRIPTS = {
  init: asset("/usr/local/libexec/banger-init"),
  network: asset("/usr/local/libexec/banger-network-bootstrap"),
  firstBoot: asset("/usr/local/libexec/banger-first-boot"),
  agent: asset("/usr/local/bin/banger-vsock-agent"),
} as const;

export interface Shell {
  name: string;
  /** The tool that must exist for this shell (Debian packages dash, busybox). */
  tool: string;
  /** argv prefix that runs a script file. */
  argv: () => string[];
}

function which(tool: string): string {
  const p = Bun.which(tool, { PATH: `${process.env.PATH}:/usr/sbin:/sbin:/usr/bin:/bin` });
  if (!p) throw new Error(`${tool} not found`);
  return p;
}

// dash is Debian's /bin/sh; busybox sh is what Alpine and minimal images have. Scripts must
// work under both, so every behaviour test runs once per shell.
export const SHELLS: Shell[] = [
  { name: "dash", tool: "dash", argv: () => [which("dash")] },
  { name: "busybox sh", tool: "busybox", argv: () => [which("busybox"), "sh"] },
];

/** Registers `name` once per shell; skipped (failed with CI=true) when the shell is missing. */
export function eachShell(name: string, fn: (sh: Shell) => void | Promise<unknown>, timeoutMs?: number): void {
  for (const sh of SHELLS) {
    testWith({ tools: [sh.tool] }, `${name} [${sh.name}]`, () => fn(sh), timeoutMs);
  }
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir holding `root/` (the guest's /), `bin/` (its PATH) and `log` (stub calls). */
export class Sandbox {
  readonly dir: string;
  readonly root: string;
  readonly bin: string;
  readonly log: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "banger-guest-"));
    tempDirs.push(this.dir);
    this.root = join(this.dir, "root");
    this.bin = join(this.dir, "bin");
    this.log = join(this.dir, "log");
    mkdirSync(this.root);
    mkdirSync(this.bin);
    writeFileSync(this.log, "");
  }

  /** Absolute host path of a guest path inside the root. */
  path(guestPath: string): string {
    return join(this.root, guestPath);
  }

  write(guestPath: string, content: string, mode = 0o644): string {
    const p = this.path(guestPath);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  }

  mkdir(guestPath: string): string {
    const p = this.path(guestPath);
    mkdirSync(p, { recursive: true });
    return p;
  }

  exists(guestPath: string): boolean {
    return existsSync(this.path(guestPath));
  }

  read(guestPath: string): string {
    return readFileSync(this.path(guestPath), "utf8");
  }

  /** Makes real host tools available on the sandbox PATH. */
  linkTools(...names: string[]): this {
    for (const n of names) symlinkSync(which(n), join(this.bin, n));
    return this;
  }

  /**
   * A stub command: records "name args..." in the log, then runs `body` (sh, with the host's
   * PATH, so stubs may use any tool; BANGER_ROOT is the guest root).
   */
  stub(name: string, body = "exit 0"): this {
    const p = join(this.bin, name);
    writeFileSync(
      p,
      `#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\nprintf '%s\\n' "${name}${"${*:+ $*}"}" >>"$BANGER_TEST_LOG"\n${body}\n`,
    );
    chmodSync(p, 0o755);
    return this;
  }

  /** The stub calls so far, one string per call. */
  calls(): string[] {
    return readFileSync(this.log, "utf8").split("\n").filter((l) => l !== "");
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` under `sh` with only the sandbox's bin on PATH, BANGER_ROOT set to its root, and
 * nothing else from the host environment except what `env` adds.
 */
export async function runScript(
  sh: Shell,
  script: string,
  box: Sandbox,
  opts: { args?: string[]; env?: Record<string, string>; stdin?: string } = {},
): Promise<RunResult> {
  const p = Bun.spawn([...sh.argv(), script, ...(opts.args ?? [])], {
    cwd: box.dir,
    env: { PATH: box.bin, BANGER_ROOT: box.root, BANGER_TEST_LOG: box.log, ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Fails with the script's output when it exited with another code than `want`. */
export function expectExit(r: RunResult, want: number): void {
  if (r.code !== want) {
    throw new Error(`exit ${r.code}, wanted ${want}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

/**
 * Runs a snippet of sh (`sh -c SNIPPET guest-test ARGS...`) in the same controlled environment as
 * runScript: used to source a script's functions (banger-init's BANGER_INIT_SOURCE=1) and call
 * them one at a time.
 */
export async function runSnippet(
  sh: Shell,
  snippet: string,
  box: Sandbox,
  opts: { args?: string[]; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const p = Bun.spawn([...sh.argv(), "-c", snippet, "guest-test", ...(opts.args ?? [])], {
    cwd: box.dir,
    env: { PATH: box.bin, BANGER_ROOT: box.root, BANGER_TEST_LOG: box.log, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}
