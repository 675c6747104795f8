// What `bun run banger` starts. It runs the command line from bundles of src/ compiled to
// JavaScriptCore bytecode, so a run skips transpiling, parsing and compiling ~60 modules: the
// Debian make-ext4 measured 251 against 274 ms from source (25 interleaved runs), the CPU 350
// against 382 ms. Two bundles, from the same sources:
// - the full one (main.js), for the commands that do the work in this process: `daemon run`,
//   `internal ...`, anything under BANGER_NO_DAEMON;
// - the client (client.js), for every other command: the command line and the daemon's client,
//   without what commands import on demand to do work (the services, the writer, the OCI
//   stack). Such a module, when one is imported after all (`kernel`, `doctor`), comes from the
//   full bundle then. 90 KB of source instead of 600, and no node:fs, node:os or
//   node:child_process unless a command needs them: through a running daemon, `image list`
//   measured 58 against 75 ms before, `image show` 53 against 74, and `bun run banger image
//   list` 64 against 89 (the same minutes, 30-40 runs each).
// They live in node_modules/.cache/banger/ with a fingerprint of every file under src/ and
// assets/ (path, size, mtime), of this Bun and of this checkout's path; they are rebuilt,
// in-process, whenever the fingerprint changes, so an edited source never runs stale. Where
// they cannot be built (read-only checkout, a bundler error) the sources run as they are.
// Worker threads still start from their source files (the bundle refers to them by path).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const SRC = dirname(import.meta.dir); // src/
const ROOT = dirname(SRC);
/** Keyed by the checkout's path: copies sharing one node_modules (by symlink) keep their own bundles. */
const CACHE = join(ROOT, "node_modules", ".cache", "banger", `cli-${Bun.hash(SRC).toString(16)}`);
const ENTRY = join(SRC, "cli", "main.ts");

type Main = (argv: string[]) => Promise<number>;

/** Every file under src/ and the lock files, with their sizes and mtimes, plus Bun's version, hashed. */
function fingerprint(): string {
  const parts = [Bun.version, Bun.revision, SRC];
  for (const lock of ["package-lock.json", "bun.lock"]) {
    try {
      const s = statSync(join(ROOT, lock));
      parts.push(`${lock}:${s.size}:${s.mtimeMs}`);
    } catch {
      // no such lock file
    }
  }
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const s = statSync(path);
        parts.push(`${relative(SRC, path)}:${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(SRC);
  // The guest files are embedded in the bundle too: an edited one must rebuild it.
  try {
    walk(join(ROOT, "assets"));
  } catch {
    // no assets dir (a partial copy): the sources' imports will say what is missing
  }
  return Bun.hash(parts.join("\n")).toString(16);
}

function readFingerprint(dir: string): string | null {
  try {
    return readFileSync(join(dir, "fingerprint"), "utf8");
  } catch {
    return null;
  }
}

/**
 * The modules a command imports on demand (`await import(...)`) that a command talking to the
 * daemon needs; the client bundle keeps them. Every other module imported on demand (the
 * services, the ext4 writer, the OCI stack, doctor's probes) is left out of it.
 */
const CLIENT_ON_DEMAND = new Set([
  "cli/daemon-start.ts",
  "cli/daemon-spawn.ts",
  "cli/progress.ts",
  "daemon/client/index.ts",
  "daemon/log.ts",
  "daemon/protocol.ts",
  "daemon/runtime-dir.ts",
  "io/flock.ts",
  "io/pipe.ts",
  "oci/platform.ts",
]);

/**
 * The client bundle: main.ts and what it imports, where each module left out (see
 * CLIENT_ON_DEMAND) is a stub that takes it from the full bundle, loaded then. Returns the
 * modules it left out, by their path under src/, for the full bundle to hand over.
 */
async function buildClient(outdir: string, full: string): Promise<string[] | null> {
  const left = new Set<string>();
  const plugin: Bun.BunPlugin = {
    name: "banger-client",
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== "dynamic-import") return undefined;
        const key = relative(SRC, Bun.resolveSync(args.path, dirname(args.importer)));
        if (CLIENT_ON_DEMAND.has(key)) return undefined;
        left.add(key);
        return { path: key, namespace: "banger-full" };
      });
      // The full bundle's path in a variable: a literal would make the bundler pull it in.
      build.onLoad({ filter: /.*/, namespace: "banger-full" }, (args) => ({
        contents: `const full = ${JSON.stringify(full)};\nmodule.exports = require(full).leftOut(${JSON.stringify(args.path)});\n`,
        loader: "js",
      }));
    },
  };
  const result = await Bun.build({ entrypoints: [ENTRY], outdir, naming: "client.[ext]", target: "bun", format: "cjs", bytecode: true, plugins: [plugin] });
  return result.success ? [...left].sort() : null;
}

/** The full bundle: main.ts, and leftOut(key), which hands the client bundle a module it left out. */
async function buildFull(outdir: string, leftOut: string[]): Promise<boolean> {
  const entry = join(outdir, "full-entry.ts");
  const cases = leftOut.map((key) => `    case ${JSON.stringify(key)}:\n      return require(${JSON.stringify(join(SRC, key))});`);
  writeFileSync(
    entry,
    [
      `export { main } from ${JSON.stringify(ENTRY)};`,
      "export function leftOut(key: string): unknown {",
      "  switch (key) {",
      ...cases,
      "  }",
      "  throw new Error(`banger's full bundle has no module ${key}`);",
      "}",
      "",
    ].join("\n"),
  );
  const result = await Bun.build({ entrypoints: [entry], outdir, naming: "main.[ext]", target: "bun", format: "cjs", bytecode: true });
  rmSync(entry);
  return result.success;
}

/** Builds both bundles into a fresh directory, then renames it into place (concurrent runs each build their own). */
async function build(print: string): Promise<boolean> {
  const staging = `${CACHE}.build-${process.pid}-${Date.now()}`;
  try {
    mkdirSync(staging, { recursive: true }); // the cache dir above it too
    const leftOut = await buildClient(staging, join(CACHE, "main.js"));
    if (!leftOut || !(await buildFull(staging, leftOut))) return false;
    writeFileSync(join(staging, "fingerprint"), print);
    rmSync(CACHE, { recursive: true, force: true });
    renameSync(staging, CACHE);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Whether a run starts from the full bundle: commands that do the work in this process (the
 * daemon itself, internal, anything with BANGER_NO_DAEMON). Every other command starts from
 * the client bundle, and a module it left out comes from the full bundle when first imported.
 */
function needsFull(argv: string[]): boolean {
  return !!process.env.BANGER_NO_DAEMON || argv[0] === "internal" || (argv[0] === "daemon" && argv[1] === "run");
}

async function loadMain(argv: string[]): Promise<Main> {
  if (!process.env.BANGER_FROM_SOURCE) {
    try {
      const print = fingerprint();
      let ready = readFingerprint(CACHE) === print;
      if (!ready) ready = (await build(print)) && readFingerprint(CACHE) === print;
      // The bundles are CommonJS (bytecode needs it): require, not import.
      if (ready) return (require(join(CACHE, needsFull(argv) ? "main.js" : "client.js")) as { main: Main }).main;
    } catch {
      // fall through to the sources
    }
  }
  return (await import("./main.ts")).main;
}

const argv = process.argv.slice(2);
const main = await loadMain(argv);
process.exitCode = await main(argv);
