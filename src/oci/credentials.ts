// Registry credentials, found where `docker login` leaves them: $DOCKER_CONFIG/config.json
// (default ~/.docker/config.json) with `auths` (base64 user:pass, identitytoken),
// `credHelpers` (per registry) and `credsStore` (all registries), the helpers being
// `docker-credential-<name> get` programs: server on stdin, {Username, Secret} JSON out.
import os from "node:os";
import path from "node:path";
import { DOCKER_HUB } from "./reference.ts";
import { OciError, errorText } from "./errors.ts";

export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (`identitytoken`); used with the bearer token server only. */
  identityToken?: string;
  /** Where it came from, for messages ("~/.docker/config.json auths", "credential helper pass"). */
  source: string;
}

export type CredentialLookup = (registry: string) => Promise<Credential | undefined>;

export interface DockerConfigOptions {
  /** The process environment (DOCKER_CONFIG, HOME, PATH for helpers), handed in by the caller: library code does not read it. */
  env: Record<string, string | undefined>;
  /** Seconds a credential helper may take. */
  helperTimeoutMs?: number;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export function dockerConfigPath(env: Record<string, string | undefined>): string {
  const dir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), ".docker");
  return path.join(dir, "config.json");
}

/** The keys `docker login` may have used for a registry. */
function candidateKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io", "https://registry-1.docker.io"];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

/** Host part of an `auths` key, as Docker normalizes it ("https://x:5000/v1/" -> "x:5000"). */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0]!;
}

/** Server name handed to credential helpers (Docker Hub's legacy URL, else host[:port]). */
function helperServer(registry: string): string {
  return registry === DOCKER_HUB ? "https://index.docker.io/v1/" : registry;
}

async function runHelper(name: string, registry: string, env: Record<string, string | undefined>, timeoutMs: number): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new OciError(`credential helper name "${name}" in ${dockerConfigPath(env)} is not a plain name`);
  const exe = Bun.which(program, { PATH: env.PATH ?? "" });
  if (!exe) throw new OciError(`credential helper ${program} (configured in ${dockerConfigPath(env)} for ${registry}) is not on PATH`);
  const proc = Bun.spawn([exe, "get"], {
    stdin: new TextEncoder().encode(helperServer(registry)),
    stdout: "pipe",
    stderr: "pipe",
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
  });
  const timer = setTimeout(() => proc.kill(), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) {
    const text = (out + err).trim();
    // Helpers say "credentials not found in native keychain" when they have nothing for a host.
    if (/not found/i.test(text)) return undefined;
    throw new OciError(`credential helper ${program} failed for ${registry} (exit ${code}): ${text.slice(0, 300)}`);
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
  } catch (e) {
    throw new OciError(`credential helper ${program} printed no valid JSON for ${registry}: ${errorText(e)}`);
  }
  const username = typeof parsed.Username === "string" ? parsed.Username : "";
  const secret = typeof parsed.Secret === "string" ? parsed.Secret : "";
  if (!secret) return undefined;
  const source = `credential helper ${program}`;
  return username === "<token>" ? { identityToken: secret, source } : { username, password: secret, source };
}

/** Credential lookup backed by the Docker config file and its helpers. */
export function dockerConfigCredentials(opts: DockerConfigOptions): CredentialLookup {
  const env = opts.env;
  const timeout = opts.helperTimeoutMs ?? 30_000;
  return async (registry) => {
    const file = dockerConfigPath(env);
    let config: DockerConfigFile;
    try {
      const f = Bun.file(file);
      if (!(await f.exists())) return undefined;
      config = JSON.parse(await f.text()) as DockerConfigFile;
    } catch (err) {
      throw new OciError(`cannot read Docker credentials from ${file}: ${errorText(err)}`, { cause: err });
    }
    const keys = candidateKeys(registry);
    const helper = keys.map((k) => config.credHelpers?.[k]).find((h) => h) ?? config.credsStore;
    if (helper) {
      const c = await runHelper(helper, registry, env, timeout);
      if (c) return c;
    }
    const auths = config.auths ?? {};
    const key = keys.find((k) => auths[k]) ?? Object.keys(auths).find((k) => keyHost(k) === registry || (registry === DOCKER_HUB && keyHost(k) === "index.docker.io"));
    const entry = key ? auths[key] : undefined;
    if (!entry) return undefined;
    const source = `${file} auths["${key}"]`;
    if (entry.identitytoken) return { identityToken: entry.identitytoken, source };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw new OciError(`${source}: "auth" is not base64 of user:password`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password, source };
    return undefined;
  };
}

/** Fixed credentials (tests, or a daemon handed them by the CLI). */
export function staticCredentials(map: Record<string, Omit<Credential, "source">>): CredentialLookup {
  return async (registry) => {
    const c = map[registry];
    return c ? { ...c, source: "explicit credentials" } : undefined;
  };
}
