// What the numbers were measured on: CPU, memory, kernel, tool versions, disk.
import { cpus, totalmem, release } from "node:os";
import { MKFS } from "./baselines.ts";

export interface MachineInfo {
  cpu: string;
  nproc: number;
  memoryGiB: number;
  kernel: string;
  bun: string;
  e2fsprogs: string;
  gnuTar: string;
  disk: string;
}

function sh(argv: string[]): string {
  try {
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    return (r.stdout.toString() + r.stderr.toString()).trim();
  } catch {
    return "";
  }
}

export function machineInfo(workDir: string): MachineInfo {
  const df = sh(["df", "-h", "--output=source,fstype,size,avail", workDir]).split("\n")[1] ?? "?";
  const dev = df.split(/\s+/)[0]?.replace("/dev/", "") ?? "";
  const rota = sh(["lsblk", "-dno", "ROTA,MODEL", `/dev/${dev}`]).trim();
  return {
    cpu: cpus()[0]?.model ?? "?",
    nproc: Number(sh(["nproc"])) || cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    bun: Bun.version,
    e2fsprogs: /mke2fs ([\d.]+ \([^)]*\))/.exec(sh([MKFS, "-V"]))?.[1] ?? "?",
    gnuTar: sh(["tar", "--version"]).split("\n")[0] ?? "?",
    disk: `${df.replace(/\s+/g, " ")} (device, fstype, size, free)${rota ? `; lsblk ROTA/MODEL: ${rota}` : ""}`,
  };
}
