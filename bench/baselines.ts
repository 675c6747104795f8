// The tools compared, each a bash script reading its parameters from the environment:
//   TAR (input tar), OUT (image or copy to write), SIZE (bytes), TREE (already-extracted tree),
//   WORK (scratch dir), BUN, REPO (the banger checkout), BENCH (this bench/ dir), MKFS_N (mkfs -N value or empty), SYNC (1: fsync OUT at the end).
// Every script that writes OUT ends with `sync OUT` (when SYNC=1) so all tools pay for durable
// data the same way (mkfs.ext4 and debugfs fsync on close anyway).
import { join } from "node:path";

export interface Tool {
  name: string;
  description: string;
  script: string;
  /** Needs TREE (extracted untimed once per case). */
  needsTree?: boolean;
  /** Reads the input from stdin (streamed cases). */
  stdin?: boolean;
  /** Bash run before each measurement, not timed (same environment). */
  setup?: string;
  /** Bash run after each successful measurement, not timed (e.g. to link the image to OUT). */
  after?: string;
  /**
   * The script (and after-script) leave JSON in $STATS (and $STATS.daemon) for the report: per-call
   * latencies (bench/list-calls.ts), a daemon's CPU and peak RSS (bench/daemon.ts).
   */
  stats?: boolean;
}

function sbin(name: string): string {
  return Bun.which(name, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }) ?? `/usr/sbin/${name}`;
}

export const MKFS = sbin("mkfs.ext4");
export const DEBUGFS = sbin("debugfs");
export const E2FSCK = sbin("e2fsck");

const SYNC_OUT = `if [ "$SYNC" = 1 ]; then sync "$OUT"; fi`;
const TAR_X = `tar --numeric-owner --xattrs --xattrs-include='*' -xpf`;
const MKFS_D = `"${MKFS}" -q -F \${MKFS_N:+-N "$MKFS_N"} -d`;

export const banger: Tool = {
  name: "banger",
  description: "`bun run banger internal make-ext4 --rootfs-tar TAR --out IMG --size SIZE`",
  script: `set -e; cd "$REPO"; "$BUN" run --silent banger internal make-ext4 --rootfs-tar "$TAR" --out "$OUT" \${SIZE:+--size "$SIZE"}; ${SYNC_OUT}`,
};

export const bangerStdin: Tool = {
  name: "banger",
  description: "`GEN | bun run banger internal make-ext4 --rootfs-tar - --out IMG`",
  script: `set -e; cd "$REPO"; "$BUN" run --silent banger internal make-ext4 --rootfs-tar - --out "$OUT" \${SIZE:+--size "$SIZE"}; ${SYNC_OUT}`,
  stdin: true,
};

export const goPipeline: Tool = {
  name: "go-pipeline",
  description: "GNU tar extract + `mkfs.ext4 -d` + `debugfs -w` script setting uid/gid/mode of every entry (the Go version's pipeline, all timed)",
  script: [
    "set -e",
    `d="$WORK/extract"; rm -rf "$d"; mkdir -p "$d"`,
    `${TAR_X} "$TAR" -C "$d"`,
    `${MKFS_D} "$d" "$OUT" "$((SIZE / 1024))k"`,
    `"$BUN" "$BENCH/debugfs-script.ts" "$d" > "$WORK/debugfs.script"`,
    `"${DEBUGFS}" -w -f "$WORK/debugfs.script" "$OUT" > /dev/null 2> "$WORK/debugfs.err"`,
    SYNC_OUT,
  ].join("\n"),
};

export const mkfsOnly: Tool = {
  name: "mkfs.ext4 -d",
  description: "`mkfs.ext4 -d TREE` on the already-extracted tree (extraction not timed)",
  script: `set -e; ${MKFS_D} "$TREE" "$OUT" "$((SIZE / 1024))k"; ${SYNC_OUT}`,
  needsTree: true,
};

export const plainCopy: Tool = {
  name: "cat (floor)",
  description: "`cat TAR > FILE`: a plain sequential copy of the tar",
  script: `set -e; cat "$TAR" > "$OUT"; ${SYNC_OUT}`,
};

export const pipeFloor: Tool = {
  name: "pipe read (floor)",
  description: "`GEN | bun bench/pipe-read.ts`: reading the generated stream through a 1 MiB pipe (as banger grows its stdin pipe), no writing",
  script: `"$BUN" "$BENCH/pipe-read.ts"`,
  stdin: true,
};

/** Extracts TAR into dir the way the pipeline does (used untimed for the mkfs-only baseline). */
export async function extractTree(tar: string, dir: string): Promise<void> {
  const p = Bun.spawn(["bash", "-c", `rm -rf "$2" && mkdir -p "$2" && ${TAR_X} "$1" -C "$2"`, "x", tar, dir], { stdout: "inherit", stderr: "inherit" });
  const code = await p.exited;
  if (code !== 0) throw new Error(`extracting ${tar} into ${dir} failed (exit ${code})`);
}

export function removeTree(dir: string): void {
  Bun.spawnSync(["rm", "-rf", dir]);
}

export function workPath(work: string, ...parts: string[]): string {
  return join(work, ...parts);
}
