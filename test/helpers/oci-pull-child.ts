// Child process for the "killed pull" test: pulls <reference> into the cache at <dir>.
import { BlobCache, RegistrySource, staticCredentials } from "../../src/oci/index.ts";

const [ref, dir] = process.argv.slice(2);
await new RegistrySource(ref!, { cache: new BlobCache(dir!), credentials: staticCredentials({}) }).resolve();
