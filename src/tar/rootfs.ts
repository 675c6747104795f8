// A plain rootfs tar (file or standard input) → FsNode tree + the byte source its files live in.

import { fstatSync, openSync } from "node:fs";
import { SpoolPolicy, type ByteSource, type FileDataSink, type FsNode } from "../tree/index.ts";
import { TarError } from "./errors.ts";
import { parseTarFd } from "./input.ts";
import { TarParser } from "./reader.ts";
import { FdByteSource } from "./source.ts";
import type { IoOptions } from "../io/options.ts";
import { standardInput } from "../io/pipe.ts";
import { Spool, SpoolInputError, spoolPathNear, spoolStream } from "../io/spool.ts";
import { RootfsBuilder } from "./tree.ts";

export interface LoadedRootfs {
  root: FsNode;
  /** sources[0] holds every regular file's bytes (FileData.source is 0). */
  sources: ByteSource[];
  /** A hash of all header records (not file data): same tar ⇒ same identity. */
  identity: Uint8Array;
  /** Standard input from a pipe: the bytes written to its spool (file data a sink held is skipped). */
  spooledBytes?: number;
  /** Closes the sources and removes any spool file; idempotent. */
  cleanup(): void;
}

export interface LoadOptions {
  /** Standard input is spooled to a hidden file in this path's directory (the output image's). */
  spoolNear: string;
  /** How the tar is read and the spool written (mmap, O_DIRECT). */
  io?: IoOptions;
  /**
   * Once the tar's byte source exists (before any of it is parsed), may return a sink that then
   * receives every regular file's data as it goes by and finds its zero blocks (see
   * FileDataSink). Lets a writer place and copy file data while the tar is read, from the
   * bytes already in memory. `spool` is given when the source is a spool of standard input
   * being filled as the tar is parsed: the sink may hold the file bytes in its place.
   */
  fileDataSink?: (source: ByteSource, spool: SpoolPolicy | null) => FileDataSink | null;
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/**
 * Reads a rootfs tar (`input` a path, or "-" for standard input) in one sequential pass.
 *
 * A file input is its own source: files reference their data offsets in the tar. Standard
 * input that is a regular file (`< x.tar`) is used the same way, read from offset 0. A pipe is
 * parsed while it is spooled (src/io/spool.ts) to `.<basename>.spool-<pid>-<random>` next to
 * `opts.spoolNear`, at the same offsets,
 * with all-zero 4 KiB blocks left as holes. The spool file is unlinked right after it is
 * created and lives on only through its open descriptor, so nothing is left on disk after
 * cleanup(), after an error, or even after the process is killed.
 */
export async function loadRootfsTar(input: string, opts: LoadOptions): Promise<LoadedRootfs> {
  const builder = new RootfsBuilder(0);
  const parser = new TarParser((entry) => builder.add(entry));
  /** Gives the parser the caller's file data sink for `source`, if it has one. */
  const attachSink = (source: ByteSource, spool: SpoolPolicy | null): void => {
    const sink = opts.fileDataSink?.(source, spool) ?? null;
    if (sink) parser.useFileDataSink(sink);
  };

  if (input !== "-" || fstatSync(0).isFile()) {
    const fromStdin = input === "-";
    let fd: number;
    if (fromStdin) {
      fd = 0;
    } else {
      try {
        fd = openSync(input, "r");
      } catch (e) {
        throw new TarError(null, `cannot open ${input}: ${(e as Error).message}`);
      }
    }
    const opened = new FdByteSource(fd, fromStdin ? "standard input" : input, !fromStdin);
    try {
      if (!fromStdin && !fstatSync(fd).isFile()) throw new TarError(null, `${input} is not a regular file`);
      attachSink(opened, null);
      parseTarFd(fd, parser, opts.io);
    } catch (e) {
      opened.close();
      throw e;
    }
    return { root: builder.root, sources: [opened], identity: parser.identity(), cleanup: once(() => opened.close()) };
  }

  // node:tty only when it can matter: loading it costs milliseconds on every run.
  if (fstatSync(0).isCharacterDevice() && (await import("node:tty")).isatty(0)) throw new TarError(null, "refusing to read a tar from a terminal (pipe one in, or give a file)");
  const spoolPath = spoolPathNear(opts.spoolNear, "spool");
  let spool: Spool;
  try {
    spool = Spool.create(spoolPath, { io: opts.io });
  } catch (e) {
    throw new TarError(null, (e as Error).message);
  }
  const spoolSource = new FdByteSource(spool.fd, `spool of standard input (${spoolPath}, unlinked)`);
  try {
    // A sink that holds the file bytes (SpoolPolicy) spares the spool that data.
    const policy = new SpoolPolicy((bytes, offset) => spool.writeBack(bytes, offset));
    attachSink(spoolSource, policy);
    await spoolStream(standardInput({ blocking: true }), spool, {
      observe: (chunk) => {
        parser.push(chunk);
        return !parser.ended;
      },
      spoolChunk: () => policy.spoolsChunks,
    });
    parser.end();
    try {
      await spool.close();
    } catch (e) {
      throw new TarError(null, `writing the spool of standard input (${spoolPath}, unlinked): ${(e as Error).message}`);
    }
  } catch (e) {
    await spool.stop();
    spoolSource.close();
    throw e instanceof SpoolInputError ? new TarError(null, e.message) : e;
  }
  return { root: builder.root, sources: [spoolSource], identity: parser.identity(), spooledBytes: spool.bytesWritten, cleanup: once(() => spoolSource.close()) };
}
