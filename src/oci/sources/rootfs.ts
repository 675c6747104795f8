// A plain rootfs tar (`rootfs:FILE`, or `-` for standard input), optionally gzip/zstd
// compressed: one layer, a synthesized config for the requested (or host) platform.
// Standard input is spooled first (src/io/spool.ts, the spool `make-ext4 -` uses too), because
// layers are read more than once.
import { closeSync, readSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { standardInput } from "../../io/pipe.ts";
import { Spool, spoolPathNear, spoolStream } from "../../io/spool.ts";
import { DigestWriter } from "../digest.ts";
import { OciError, errorText } from "../errors.ts";
import { fileChunks, layerChunks, toReadableStream } from "../layer-stream.ts";
import { synthesizedManifestDigest, type ImageConfig, type LayerRef } from "../manifest.ts";
import { sniffCompression } from "../media-types.ts";
import { hostPlatform } from "../platform.ts";
import type { ImageSource, ResolveOptions, ResolvedImage } from "../source.ts";

export interface RootfsSourceOptions {
  /** The directory stdin is spooled in, as an unlinked file (default: the OS temp dir). */
  tmpDir?: string;
  /** Input for "-" (default: process stdin). */
  stdin?: AsyncIterable<Uint8Array>;
}

export class RootfsTarSource implements ImageSource {
  /** `file` is a path, or "-" for standard input. */
  constructor(
    readonly file: string,
    private readonly opts: RootfsSourceOptions = {},
  ) {}

  describe(): string {
    return this.file === "-" ? "rootfs:- (standard input)" : `rootfs:${this.file}`;
  }

  /**
   * Spools stdin, hashing it on the way. The spool is unlinked from the start: closing its
   * descriptor (cleanup) is all it takes to remove it, and a killed process leaves nothing.
   */
  private async spool(): Promise<{ fd: number; digest: string; size: number; cleanup: () => Promise<void> }> {
    const file = spoolPathNear(path.join(this.opts.tmpDir ?? os.tmpdir(), "stdin"), "spool");
    let spool: Spool;
    try {
      spool = Spool.create(file, { readSoon: true }); // unpacked right after
    } catch (err) {
      throw new OciError(`${this.describe()}: ${errorText(err)}`, { cause: err });
    }
    let closed = false;
    const cleanup = async () => {
      if (!closed) closeSync(spool.fd);
      closed = true;
    };
    try {
      const h = new DigestWriter();
      // Not blocking reads: the pull answers interrupts and draws progress meanwhile. 1 MiB
      // chunks, not 4: the Debian rootfs piped to `image pull -` peaked at ~175 MB instead of
      // ~200 MB, no slower.
      await spoolStream(this.opts.stdin ?? standardInput({ blocking: false }), spool, {
        chunkSize: 1 << 20,
        observe: (chunk) => {
          h.update(chunk);
          return true;
        },
      });
      await spool.close();
      return { fd: spool.fd, digest: h.digest(), size: h.bytes, cleanup };
    } catch (err) {
      await spool.stop();
      await cleanup();
      throw new OciError(`${this.describe()}: spooling standard input to ${file} (unlinked) failed: ${errorText(err)}`, { cause: err });
    }
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const src = this.describe();
    /** The tar: its path, or the descriptor of the spool of stdin. */
    let file: string | number = this.file;
    let digest: string;
    let size: number;
    let cleanup = async () => {};
    if (this.file === "-") {
      ({ fd: file, digest, size, cleanup } = await this.spool());
    } else {
      try {
        const h = new DigestWriter();
        for await (const chunk of fileChunks(file)) h.update(chunk);
        digest = h.digest();
        size = h.bytes;
      } catch (err) {
        throw new OciError(`${src}: cannot read: ${errorText(err)}`, { cause: err });
      }
    }
    try {
      const head = await readHead(file, 8);
      const compression = sniffCompression(head);
      if (compression === "xz" || compression === "bzip2") throw new OciError(`${src}: ${compression}-compressed tars are not supported; use gzip, zstd or none`);
      if (size === 0) throw new OciError(`${src}: empty input`);
      const platform = ropts.platform ?? hostPlatform();
      const diffId = compression === "none" ? digest : undefined;
      const mediaType = { none: "application/vnd.oci.image.layer.v1.tar", gzip: "application/vnd.oci.image.layer.v1.tar+gzip", zstd: "application/vnd.oci.image.layer.v1.tar+zstd" }[compression];
      const layers: LayerRef[] = [{ digest, size, mediaType, compression, ...(diffId ? { diffId } : {}) }];
      const raw = { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), rootfs: { type: "layers", diff_ids: diffId ? [diffId] : [] } };
      const config: ImageConfig = { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}), rootfs: raw.rootfs, raw };
      const configBytes = JSON.stringify(raw);
      ropts.progress?.({ type: "layer", index: 0, digest, bytesDone: size, bytesTotal: size, state: "cached" });
      let disposed = false;
      return {
        source: src,
        manifestDigest: synthesizedManifestDigest(configBytes, layers),
        platform,
        config,
        layers,
        openLayer(i) {
          if (i !== 0) throw new OciError(`${src}: no layer ${i} (a rootfs tar is one layer)`);
          if (disposed) throw new OciError(`${src}: already disposed`);
          // The digest check catches a file that changed since resolve().
          return toReadableStream(layerChunks(fileChunks(file), { compression, digest, where: src }));
        },
        async dispose() {
          disposed = true;
          await cleanup();
        },
      };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }
}

/** The first `n` bytes of a file (fewer if it is shorter), by path or by descriptor. */
async function readHead(file: string | number, n: number): Promise<Uint8Array> {
  if (typeof file === "string") return new Uint8Array(await Bun.file(file).slice(0, n).arrayBuffer());
  const head = new Uint8Array(n);
  return head.subarray(0, readSync(file, head, 0, n, 0));
}
