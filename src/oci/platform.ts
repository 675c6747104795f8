// Platforms (os/architecture/variant) and how an index entry is matched against one.
import { OciError } from "./errors.ts";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Go's GOARCH names for Node's process.arch values. */
const NODE_ARCH: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: "amd64" },
  arm64: { architecture: "arm64", variant: "v8" },
  arm: { architecture: "arm", variant: "v7" },
  ia32: { architecture: "386" },
  ppc64: { architecture: "ppc64le" },
  s390x: { architecture: "s390x" },
  riscv64: { architecture: "riscv64" },
};

export function hostPlatform(): Platform {
  const a = NODE_ARCH[process.arch];
  if (!a) throw new OciError(`no container platform known for host architecture "${process.arch}"; pass --platform`);
  return { os: "linux", ...a };
}

/** Parses "os/arch[/variant]", e.g. linux/arm64/v8. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new OciError(`invalid platform "${text}": expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7`);
  }
  const [os, architecture, variant] = parts.map((p) => p.toLowerCase());
  return normalizePlatform({ os: os!, architecture: architecture!, variant });
}

export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture;
  let variant = p.variant || undefined;
  if (architecture === "aarch64") architecture = "arm64";
  if (architecture === "x86_64" || architecture === "x86-64") architecture = "amd64";
  // arm64 has one variant in practice: an entry without one is v8.
  if (architecture === "arm64" && !variant) variant = "v8";
  return { os: p.os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? "/" + p.variant : ""}`;
}

/** True when a candidate (index entry or image config) serves the wanted platform. */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  // An entry without a variant serves any variant of its architecture (amd64 has none).
  return !c.variant || !w.variant || c.variant === w.variant;
}
