// A plain rootfs tar (`rootfs:FILE`, or `-` for standard input), optionally gzip/zstd
// compressed: one layer, a synthesized config for the requested (or host) platform.
// Standard input is spooled to a temp file first, because layers are read more than once.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DigestWriter } from "../digest.ts";
import { OciError, errorText } from "../errors.ts";
import { fileChunks, layerChunks, toReadableStream } from "../layer-stream.ts";
import { synthesizedManifestDigest, type ImageConfig, type LayerRef } from "../manifest.ts";
import { sniffCompression } from "../media-types.ts";
import { hostPlatform } from "../platform.ts";
import type { ImageSource, ResolveOptions, ResolvedImage } from "../source.ts";

export interface RootfsSourceOptions {
  /** Where stdin is spooled (default: the OS temp dir). */
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

  /** Copies stdin to a private temp file, hashing it on the way. */
  private async spool(): Promise<{ file: string; digest: string; size: number; cleanup: () => Promise<void> }> {
    const dir = await fs.mkdtemp(path.join(this.opts.tmpDir ?? os.tmpdir(), "banger-rootfs-"));
    const file = path.join(dir, "rootfs.tar");
    const cleanup = () => fs.rm(dir, { recursive: true, force: true });
    try {
      const h = new DigestWriter();
      const fh = await fs.open(file, "w", 0o600);
      try {
        const input = this.opts.stdin ?? (Bun.stdin.stream() as AsyncIterable<Uint8Array>);
        for await (const chunk of input) {
          h.update(chunk);
          await fh.write(chunk);
        }
      } finally {
        await fh.close();
      }
      return { file, digest: h.digest(), size: h.bytes, cleanup };
    } catch (err) {
      await cleanup();
      throw new OciError(`${this.describe()}: spooling standard input to ${file} failed: ${errorText(err)}`, { cause: err });
    }
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const src = this.describe();
    let file = this.file;
    let digest: string;
    let size: number;
    let cleanup = async () => {};
    if (this.file === "-") {
      ({ file, digest, size, cleanup } = await this.spool());
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
      const head = new Uint8Array(await Bun.file(file).slice(0, 8).arrayBuffer());
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
