// The benchmark cases of the issue, each with a full and a --quick (smoke) variant.
import { bigFileTar, debianRootfs, manyFilesTar, zeroStreamCommand } from "./inputs.ts";
import { banger, bangerStdin, goPipeline, mkfsOnly, pipeFloor, plainCopy, type Tool } from "./baselines.ts";

export type Input =
  | { kind: "tar"; tar: string }
  | { kind: "stream"; gen: string[]; size: number; nonZeroBlocks: number };

export interface Variant {
  describe: string;
  prepare(): Promise<Input>;
  tools: Tool[];
  /** Baselines left out, with the reason (written to RESULTS.md). */
  skipped: { tool: string; why: string }[];
  timeoutS: number;
  /** Pass --size to banger too (false: let banger pick its default). */
  passSize: boolean;
}

export interface CaseDef {
  name: string;
  title: string;
  full: Variant;
  quick: Variant;
}

const TAR_TOOLS = [banger, goPipeline, mkfsOnly, plainCopy];
const GiB = 2 ** 30;

function filesVariant(files: number, dirs: number, timeoutS: number): Variant {
  return {
    describe: `${files.toLocaleString("en-US")} files of 1..1024 bytes in ${dirs.toLocaleString("en-US")} director${dirs === 1 ? "y" : "ies"}`,
    prepare: async () => ({ kind: "tar", tar: await manyFilesTar(files, dirs) }),
    tools: TAR_TOOLS,
    skipped: [],
    timeoutS,
    passSize: true,
  };
}

function bigVariant(size: number, timeoutS: number): Variant {
  return {
    describe: `one ${size >= GiB ? `${size / GiB} GiB` : `${size / 2 ** 20} MiB`} file of non-zero data`,
    prepare: async () => ({ kind: "tar", tar: await bigFileTar(size) }),
    tools: TAR_TOOLS,
    skipped: [],
    timeoutS,
    passSize: true,
  };
}

function zeroVariant(size: number, nonZeroBlocks: number, timeoutS: number): Variant {
  const skipWhy = `would store the ${size / GiB} GiB stream on disk (the case is defined as never stored)`;
  return {
    describe: `one ${size / GiB} GiB file, all zeros but ${nonZeroBlocks} non-zero 4 KiB blocks, generated on the fly into \`--rootfs-tar -\``,
    prepare: async () => ({ kind: "stream", gen: zeroStreamCommand(size, nonZeroBlocks), size, nonZeroBlocks }),
    tools: [bangerStdin, pipeFloor],
    skipped: [
      { tool: goPipeline.name, why: `extraction ${skipWhy}` },
      { tool: mkfsOnly.name, why: `needs the extracted file, which ${skipWhy}` },
      { tool: plainCopy.name, why: `replaced by "pipe read (floor)": a copy ${skipWhy}` },
    ],
    timeoutS,
    passSize: false,
  };
}

export const CASES: CaseDef[] = [
  {
    name: "debian",
    title: "Debian bookworm rootfs (real, ../shared/fixtures/debian-rootfs.sh)",
    full: {
      describe: "the real Debian bookworm minbase rootfs tar (systemd, sshd, sudo, ...)",
      prepare: async () => ({ kind: "tar", tar: await debianRootfs() }),
      tools: TAR_TOOLS,
      skipped: [],
      timeoutS: 900,
      passSize: true,
    },
    // The real rootfs is already small: the quick variant is the same input, run once.
    quick: {
      describe: "the real Debian bookworm minbase rootfs tar (systemd, sshd, sudo, ...)",
      prepare: async () => ({ kind: "tar", tar: await debianRootfs() }),
      tools: TAR_TOOLS,
      skipped: [],
      timeoutS: 300,
      passSize: true,
    },
  },
  { name: "files-1m", title: "1,000,000 small files in 1,000 directories", full: filesVariant(1_000_000, 1000, 2400), quick: filesVariant(10_000, 100, 300) },
  { name: "files-100k-one-dir", title: "100,000 files in one directory", full: filesVariant(100_000, 1, 1200), quick: filesVariant(5_000, 1, 300) },
  { name: "file-8g", title: "one 8 GiB file of non-zero data", full: bigVariant(8 * GiB, 1800), quick: bigVariant(64 * 2 ** 20, 300) },
  { name: "zero-100g", title: "one 100 GiB file, almost all zeros, streamed (never stored)", full: zeroVariant(100 * GiB, 64, 1800), quick: zeroVariant(2 * GiB, 16, 300) },
];
