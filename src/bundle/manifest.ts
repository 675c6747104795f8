// manifest.json of an image bundle: what the bundle holds and how to check it.
import type { InitKind } from "../inject/index.ts";

export interface BundleManifest {
  name: string;
  distro: string;
  /** "amd64", "arm64" */
  arch: string;
  kernel_ref: string | null;
  description: string;
  /** ISO 8601 */
  created: string;
  /** sha256 (hex) of rootfs.ext4 as a plain file (holes read as zeros). */
  rootfs_sha256: string;
  /** rootfs.ext4's size in bytes. */
  size_bytes: number;
  init: InitKind;
  /** sha256 (hex) of work-seed.ext4, when the bundle has one. */
  work_seed_sha256?: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The manifest, checked field by field; errors name `where` and the field. */
export function parseBundleManifest(text: string, where: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: manifest.json is not JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${where}: manifest.json is not a JSON object`);
  const m = raw as Record<string, unknown>;
  const str = (k: string, re?: RegExp): string => {
    const v = m[k];
    if (typeof v !== "string" || (re && !re.test(v))) throw new Error(`${where}: manifest.json field "${k}" is missing or invalid`);
    return v;
  };
  const size = m.size_bytes;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size <= 0) throw new Error(`${where}: manifest.json field "size_bytes" is missing or invalid`);
  const init = str("init");
  if (init !== "systemd" && init !== "banger-init") throw new Error(`${where}: manifest.json field "init" must be "systemd" or "banger-init"`);
  const kernel = m.kernel_ref;
  if (kernel !== null && kernel !== undefined && typeof kernel !== "string") throw new Error(`${where}: manifest.json field "kernel_ref" must be a string or null`);
  const out: BundleManifest = {
    name: str("name", NAME),
    distro: str("distro"),
    arch: str("arch", /^[a-z0-9_]+$/),
    kernel_ref: (kernel as string | null | undefined) ?? null,
    description: typeof m.description === "string" ? m.description : "",
    created: str("created"),
    rootfs_sha256: str("rootfs_sha256", /^[0-9a-f]{64}$/),
    size_bytes: size,
    init,
  };
  if (m.work_seed_sha256 !== undefined) out.work_seed_sha256 = str("work_seed_sha256", /^[0-9a-f]{64}$/);
  return out;
}
