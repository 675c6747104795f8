// banger kernel register | pull | list | show | rm. The services come from createServices with
// the process environment (XDG dirs) and BANGER_KERNEL_CATALOG, read once in src/cli/env.ts.
import { option, parseArgs, UsageError, type ParsedArgs } from "../args.ts";
import type { Command } from "../command.ts";
import type { KernelPullEvent, KernelRecord, Services } from "../../daemon/index.ts";
import { readEnvSettings } from "../env.ts";
import { formatBytes, type ProgressStream } from "../progress.ts";
import { table } from "../format.ts";

const json = { name: "json", value: false, description: "print JSON on stdout instead of text" };
const quietOption = { name: "quiet", value: false, description: "print nothing but errors" };

/** Builds the services, clears what killed kernel commands left (reconcile), then runs `fn`. Loaded on demand. */
async function withKernels<T>(quiet: boolean, fn: (s: Services) => Promise<T>): Promise<T> {
  const settings = readEnvSettings(process.env);
  const { createServices, LineLogger, silentLogger } = await import("../../daemon/index.ts");
  const services = createServices(process.env, { logger: quiet ? silentLogger : new LineLogger((m) => console.error(m)), kernelCatalogFile: settings.kernelCatalogFile });
  try {
    await services.kernels.reconcile();
    return await fn(services);
  } finally {
    services.close();
  }
}

function positionals(args: ParsedArgs, min: number, max: number, what: string): string[] {
  if (args.positionals.length < min) throw new UsageError(`missing ${what}`);
  if (args.positionals.length > max) throw new UsageError(`unexpected argument "${args.positionals[max]}"`);
  return args.positionals;
}

function done(rec: KernelRecord, verb: string): string {
  const extras = [rec.initrdPath ? "initrd" : null, rec.modulesPath ? "modules" : null].filter(Boolean).join(" + ");
  return `${verb} kernel ${rec.name} (${rec.id}): ${rec.version}, ${rec.arch}${extras ? `, with ${extras}` : ""}, ${rec.kernelPath}`;
}

const registerOptions = [
  { name: "name", value: true, required: true, description: "kernel name (a-z, 0-9, . _ -)" },
  { name: "kernel", value: true, required: true, description: "the kernel: a bzImage (vmlinuz), an ELF vmlinux or an arm64 Image" },
  { name: "initrd", value: true, description: "its initrd (copied as initrd.img)" },
  { name: "modules", value: true, description: "its modules: lib/modules/<version> (symlinks and modes kept)" },
  quietOption,
  { ...json, description: "print the kernel's record as JSON on stdout" },
];

export const kernelRegisterCommand: Command = {
  path: ["kernel", "register"],
  summary: "copy a kernel (and its initrd and modules) into the store",
  usage: "banger kernel register --name N --kernel FILE [--initrd FILE] [--modules DIR] [--quiet] [--json]",
  options: registerOptions,
  async run(argv) {
    const args = parseArgs(argv, registerOptions);
    positionals(args, 0, 0, "");
    const quiet = args.flags.has("quiet");
    return withKernels(quiet, async ({ kernels }) => {
      const rec = await kernels.register({ name: option(args, "name")!, kernel: option(args, "kernel")!, initrd: option(args, "initrd"), modules: option(args, "modules") });
      if (args.flags.has("json")) console.log(JSON.stringify(rec));
      else if (!quiet) console.log(done(rec, "registered"));
      return 0;
    });
  },
};

/** A kernel pull's progress on stderr: one line redrawn on a TTY, one line per step otherwise. */
export class KernelPullRenderer {
  private lastState: string | null = null;
  private startedAt = 0;
  private startBytes = 0;
  private lastDraw = -Infinity;
  private open = false;

  constructor(
    private readonly out: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private endLine(): void {
    if (this.open) this.out.write("\n");
    this.open = false;
  }

  event(e: KernelPullEvent): void {
    if (e.type === "phase") {
      this.endLine();
      this.out.write(`${e.phase}${e.detail ? `: ${e.detail}` : ""}\n`);
      return;
    }
    const changed = e.state !== this.lastState;
    // Times and rates count from the first byte asked for, retries and their pauses included.
    if (this.lastState === null) {
      this.startedAt = this.now();
      this.startBytes = e.bytesDone;
    }
    if (this.out.isTTY) {
      const t = this.now();
      if (!changed && t - this.lastDraw < 100) return;
      this.lastDraw = t;
      const width = 24;
      const fill = e.bytesTotal > 0 ? Math.round((Math.min(e.bytesDone, e.bytesTotal) / e.bytesTotal) * width) : 0;
      let line = `  [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`;
      const secs = (t - this.startedAt) / 1000;
      if (e.state === "downloading" && secs >= 0.5 && e.bytesDone > this.startBytes) line += `  ${formatBytes((e.bytesDone - this.startBytes) / secs)}/s`;
      if (e.state === "retrying") line += `  retrying${e.reason ? `: ${e.reason}` : ""}`;
      if (e.state === "done") line += `  done in ${secs.toFixed(1)} s`;
      this.out.write(`\r\x1b[2K${line}`);
      this.open = true;
      if (e.state === "done") this.endLine();
    } else if (changed) {
      // After a resume the state returns to "downloading": that is no new step.
      if (e.state === "downloading") {
        if (this.lastState === null) this.out.write(`downloading ${formatBytes(e.bytesTotal)}\n`);
      }
      else if (e.state === "resuming") this.out.write(`resuming at ${formatBytes(e.bytesDone)} of ${formatBytes(e.bytesTotal)}\n`);
      else if (e.state === "retrying") this.out.write(`retrying after ${formatBytes(e.bytesDone)}${e.reason ? `: ${e.reason}` : ""}\n`);
      else this.out.write(`downloaded ${formatBytes(e.bytesTotal)} in ${((this.now() - this.startedAt) / 1000).toFixed(1)} s\n`);
    }
    this.lastState = e.state;
  }

  /** Ends a line left open; call before printing anything else. */
  done(): void {
    this.endLine();
  }
}

const pullOptions = [
  { name: "name", value: true, description: "store it under this name (default: the catalog's)" },
  quietOption,
  { ...json, description: "print the kernel's record as JSON on stdout when done" },
];

export const kernelPullCommand: Command = {
  path: ["kernel", "pull"],
  summary: "download a kernel from the kernel catalog (verified, resumable) into the store",
  usage: "banger kernel pull <name> [--name N] [--quiet] [--json]\n" +
    "  name: an entry of the kernel catalog (embedded, or the file in BANGER_KERNEL_CATALOG)",
  options: pullOptions,
  async run(argv) {
    const args = parseArgs(argv, pullOptions);
    const [name] = positionals(args, 1, 1, "<name> (a kernel catalog entry)");
    const quiet = args.flags.has("quiet");
    return withKernels(quiet, async ({ kernels }) => {
      const renderer = quiet ? null : new KernelPullRenderer(process.stderr);
      const ac = new AbortController();
      let interrupts = 0;
      let exitCode = 130;
      const onSignal = (signal: NodeJS.Signals) => {
        exitCode = signal === "SIGTERM" ? 143 : 130;
        if (++interrupts > 1) process.exit(exitCode);
        ac.abort(new Error(`${signal} received`));
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const rec = await kernels.pull({ name: name!, as: option(args, "name"), signal: ac.signal, progress: renderer ? (e) => renderer.event(e) : undefined });
        renderer?.done();
        if (args.flags.has("json")) console.log(JSON.stringify(rec));
        else if (!quiet) console.log(done(rec, "pulled"));
        return 0;
      } catch (err) {
        renderer?.done();
        if (ac.signal.aborted) {
          console.error(`banger kernel pull: ${err instanceof Error ? err.message : String(err)}`);
          return exitCode;
        }
        throw err;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
  },
};


const listOptions = [json];

export const kernelListCommand: Command = {
  path: ["kernel", "list"],
  summary: "list the kernels in the store",
  usage: "banger kernel list [--json]",
  options: listOptions,
  async run(argv) {
    const args = parseArgs(argv, listOptions);
    positionals(args, 0, 0, "");
    return withKernels(false, async ({ kernels }) => {
      const all = kernels.list();
      if (args.flags.has("json")) {
        console.log(JSON.stringify(all));
        return 0;
      }
      const rows = [["NAME", "ID", "VERSION", "ARCH", "INITRD", "MODULES", "CREATED", "SOURCE"]];
      for (const r of all) rows.push([r.name, r.id, r.version, r.arch, r.initrdPath ? "yes" : "-", r.modulesPath ? "yes" : "-", r.createdAt.replace("T", " ").replace(/\.\d+Z$/, "Z"), r.source]);
      console.log(table(rows));
      return 0;
    });
  },
};

const showOptions = [json];

export const kernelShowCommand: Command = {
  path: ["kernel", "show"],
  summary: "show one kernel's record: version, architecture, files, source, sha256, the images using it",
  usage: "banger kernel show <name|id> [--json]",
  options: showOptions,
  async run(argv) {
    const args = parseArgs(argv, showOptions);
    const [ref] = positionals(args, 1, 1, "<name|id>");
    return withKernels(false, async ({ kernels }) => {
      const rec = kernels.show(ref!);
      if (args.flags.has("json")) {
        console.log(JSON.stringify(rec));
        return 0;
      }
      const users = kernels.users(rec.id).map((u) => u.name);
      const rows: [string, string][] = [
        ["name", rec.name],
        ["id", rec.id],
        ["version", rec.version],
        ["arch", rec.arch],
        ["kernel", rec.kernelPath],
        ["initrd", rec.initrdPath ?? "-"],
        ["modules", rec.modulesPath ?? "-"],
        ["source", rec.source],
        ["sha256", rec.sha256],
        ["created", rec.createdAt],
        ["used by", users.length ? users.join(", ") : "-"],
      ];
      console.log(rows.map(([k, v]) => `${(k + ":").padEnd(10)}${v}`).join("\n"));
      return 0;
    });
  },
};

const rmOptions = [quietOption, { ...json, description: "print the removed kernels' records as a JSON array" }];

export const kernelRmCommand: Command = {
  path: ["kernel", "rm"],
  summary: "remove kernels (refused while an image boots with one)",
  usage: "banger kernel rm <name|id>... [--quiet] [--json]",
  options: rmOptions,
  async run(argv) {
    const args = parseArgs(argv, rmOptions);
    const refs = positionals(args, 1, Infinity, "<name|id>");
    const quiet = args.flags.has("quiet");
    return withKernels(quiet, async ({ kernels }) => {
      const { KernelInUseError } = await import("../../daemon/index.ts");
      // All found and checked first, so a typo or a kernel in use in the third name removes nothing.
      const recs = refs.map((r) => kernels.show(r));
      for (const rec of recs) {
        const users = kernels.users(rec.id);
        if (users.length > 0) throw new KernelInUseError(rec, users);
      }
      const removed: KernelRecord[] = [];
      for (const rec of recs) {
        removed.push(await kernels.remove(rec.id));
        if (!quiet && !args.flags.has("json")) console.log(`removed ${rec.name} (${rec.id})`);
      }
      if (args.flags.has("json")) console.log(JSON.stringify(removed));
      return 0;
    });
  },
};

export const kernelCommands: Command[] = [kernelRegisterCommand, kernelPullCommand, kernelListCommand, kernelShowCommand, kernelRmCommand];
