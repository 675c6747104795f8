// One error type for everything that goes wrong while turning a reference into verified
// layers. The message always names what was being fetched or read (reference, digest, URL)
// and why it failed; the fields carry the same facts for callers that want them.

export interface OciErrorContext {
  reference?: string;
  digest?: string;
  url?: string;
  status?: number;
  cause?: unknown;
}

export class OciError extends Error {
  override name = "OciError";
  readonly reference?: string;
  readonly digest?: string;
  readonly url?: string;
  readonly status?: number;

  constructor(message: string, ctx: OciErrorContext = {}) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.reference = ctx.reference;
    this.digest = ctx.digest;
    this.url = ctx.url;
    this.status = ctx.status;
  }
}

/** The registry refused our credentials or demanded some we do not have. */
export class OciAuthError extends OciError {
  override name = "OciAuthError";
}

/** Repository, tag, manifest or blob does not exist. */
export class OciNotFoundError extends OciError {
  override name = "OciNotFoundError";
}

/** Bytes did not hash to the digest that names them. */
export class OciDigestMismatchError extends OciError {
  override name = "OciDigestMismatchError";
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
