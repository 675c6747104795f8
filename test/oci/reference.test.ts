import { describe, expect, test } from "bun:test";
import { formatReference, isLoopbackHost, parsePlatform, parseReference, platformMatches } from "../../src/oci/index.ts";
import { registryBaseUrl } from "../../src/oci/reference.ts";

const D = "sha256:" + "ab".repeat(32);

describe("references", () => {
  test.each([
    ["debian", "docker.io/library/debian:latest"],
    ["debian:12", "docker.io/library/debian:12"],
    ["library/debian", "docker.io/library/debian:latest"],
    ["index.docker.io/foo/bar:1", "docker.io/foo/bar:1"],
    ["ghcr.io/a/b/c:v1.2-x", "ghcr.io/a/b/c:v1.2-x"],
    ["localhost/app", "localhost/app:latest"],
    ["127.0.0.1:5000/x/y:z", "127.0.0.1:5000/x/y:z"],
    ["[::1]:5000/app:1", "[::1]:5000/app:1"],
    [`quay.io/a/b@${D}`, `quay.io/a/b@${D}`],
    [`quay.io/a/b:tag@${D}`, `quay.io/a/b:tag@${D}`],
  ])("%s => %s", (input, out) => {
    expect(formatReference(parseReference(input))).toBe(out);
  });

  test("a digest wins over the tag for fetching", () => {
    const r = parseReference(`x.io/a:tag@${D}`);
    expect(r.digest).toBe(D);
    expect(r.tag).toBe("tag");
  });

  test.each([
    ["", /empty/],
    ["Debian", /repository component "Debian"/],
    ["a/b:ta g", /tag/],
    [`a@sha256:${"AB".repeat(32)}`, /digest/],
    ["a@sha256:../../../etc/passwd", /digest/],
    ["a@md5:abc", /digest/],
    ["x.io/a/../b", /repository component/],
    ["x.io/", /no repository/],
    ["bad_host:5000:x/app", /not a valid host/],
  ])("rejects %p", (input, why) => {
    expect(() => parseReference(input)).toThrow(why);
  });

  test("loopback registries speak plain HTTP, others HTTPS unless insecure", () => {
    expect(isLoopbackHost("127.0.0.1:5000")).toBe(true);
    expect(isLoopbackHost("127.1.2.3")).toBe(true);
    expect(isLoopbackHost("localhost:80")).toBe(true);
    expect(isLoopbackHost("[::1]:5000")).toBe(true);
    expect(isLoopbackHost("128.0.0.1")).toBe(false);
    expect(isLoopbackHost("localhost.example.com")).toBe(false);
    expect(registryBaseUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000");
    expect(registryBaseUrl("docker.io")).toBe("https://registry-1.docker.io");
    expect(registryBaseUrl("reg.lan:5000")).toBe("https://reg.lan:5000");
    expect(registryBaseUrl("reg.lan:5000", ["reg.lan:5000"])).toBe("http://reg.lan:5000");
  });
});

describe("platforms", () => {
  test("parse and match", () => {
    expect(parsePlatform("linux/arm64")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(parsePlatform("linux/arm/v7")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(() => parsePlatform("linux")).toThrow(/expected os\/arch/);
    expect(platformMatches(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64" })).toBe(true);
    expect(platformMatches(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" })).toBe(true);
    expect(platformMatches(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v7" })).toBe(false);
    expect(platformMatches(parsePlatform("linux/amd64"), { os: "windows", architecture: "amd64" })).toBe(false);
  });
});
