// Image references as Docker writes them, normalized to registry + repository + tag/digest.
//   debian                      => docker.io/library/debian:latest
//   127.0.0.1:5000/x/y:1        => registry 127.0.0.1:5000, repository x/y, tag 1
//   ghcr.io/a/b@sha256:<hex>    => pinned by digest (a digest wins over a tag)
import { isDigest } from "./digest.ts";
import { OciError } from "./errors.ts";

export interface Reference {
  /** Registry host[:port] as written by users, "docker.io" for Docker Hub. */
  registry: string;
  /** Repository path, e.g. "library/debian". */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export const DOCKER_HUB = "docker.io";

export function parseReference(text: string): Reference {
  const bad = (why: string) => new OciError(`invalid image reference "${text}": ${why}`, { reference: text });
  if (text.length === 0) throw bad("empty");
  if (text.length > 4096) throw bad("longer than 4096 characters");
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(`digest "${digest}" is not sha256: followed by 64 lowercase hex digits`);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw bad(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase() || first.startsWith("[")) {
      registry = first;
      rest = rest.slice(slash + 1);
      if (!HOST.test(registry)) throw bad(`registry "${registry}" is not a valid host[:port]`);
    }
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (rest.length === 0) throw bad("no repository name");
  const parts = rest.split("/");
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw bad(`repository component "${p}" must be lowercase letters, digits and separators (. _ __ -)`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length > 255) throw bad("repository name longer than 255 characters");
  if (!tag && !digest) tag = "latest";
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Canonical text: registry/repository[:tag][@digest]. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? ":" + ref.tag : ""}${ref.digest ? "@" + ref.digest : ""}`;
}

/** What goes in the manifest URL: the digest if pinned, else the tag. */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** Host we actually talk to (Docker Hub's API lives on registry-1.docker.io). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
}

/** localhost, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  host = host.toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Base URL of a registry: plain HTTP for loopback and insecure registries, else HTTPS. */
export function registryBaseUrl(registry: string, insecure: Iterable<string> = []): string {
  const host = registryApiHost(registry);
  const plain = isLoopbackHost(host) || [...insecure].some((h) => h === registry || h === host);
  return `${plain ? "http" : "https"}://${host}`;
}
