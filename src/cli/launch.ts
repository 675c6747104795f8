// What `bun run banger` starts. It runs the command line from a bundle of src/ compiled to
// JavaScriptCore bytecode, so a run skips transpiling, parsing and compiling ~60 modules: the
// Debian make-ext4 measured 251 against 274 ms from source (25 interleaved runs), the CPU 350
// against 382 ms. The bundle lives in node_modules/.cache/banger/ with a fingerprint of
// every file under src/ and assets/ (path, size, mtime), of this Bun and of this checkout's path; it is
// rebuilt, in-process, whenever the fingerprint changes, so an edited source never runs stale.
// Where it cannot be built (read-only checkout, a bundler error) the sources run as they are.
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

/** Builds the bundle into a fresh directory, then renames it into place (concurrent runs each build their own). */
async function build(print: string): Promise<boolean> {
  const staging = `${CACHE}.build-${process.pid}-${Date.now()}`;
  try {
    const result = await Bun.build({ entrypoints: [ENTRY], outdir: staging, target: "bun", format: "cjs", bytecode: true });
    if (!result.success) return false;
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

async function loadMain(): Promise<Main> {
  if (!process.env.BANGER_FROM_SOURCE) {
    try {
      const print = fingerprint();
      let ready = readFingerprint(CACHE) === print;
      if (!ready) {
        mkdirSync(dirname(CACHE), { recursive: true });
        ready = (await build(print)) && readFingerprint(CACHE) === print;
      }
      // The bundle is CommonJS (bytecode needs it): require, not import.
      if (ready) return (require(join(CACHE, "main.js")) as { main: Main }).main;
    } catch {
      // fall through to the sources
    }
  }
  return (await import("./main.ts")).main;
}

const main = await loadMain();
process.exitCode = await main(process.argv.slice(2));
