/**
 * `?help=1` on any path (Vault's help operation, what `bao path-help` / `vault path-help` call):
 * `{"help": "…", "see_also": null, "openapi": null}` with a description of the path and what each
 * method does there. Like Vault, it needs a valid token that has some capability on the path
 * (except on the unauthenticated endpoints: seal-status, unseal, init, health, …).
 * Installed as a preHandler hook so it answers on every route, sys/ and mounts alike, before the
 * route's own handler (which would treat the request as a read).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type AppContext, authenticate, logicalPath, queryOf, send } from "../context.js";
import { HttpError, permissionDenied } from "../errors.js";
import { queryBool } from "../validate.js";

interface Topic {
  pattern: RegExp;
  text: string;
}

const SYS_TOPICS: Topic[] = [
  {
    pattern: /^sys\/mounts(\/|$)/,
    text: `List the currently mounted secrets engines.

## DESCRIPTION

This path responds to the following HTTP methods.

    GET /
        Lists all the mounted secrets engines.

    GET /<mount point>
        Get information about the mount at the specified path.

    POST /<mount point>
        Mount a new secrets engine (type "kv", options.version "1" or "2") at the path.

    GET|POST /<mount point>/tune
        Read or tune a mount's lease TTLs and description.

    DELETE /<mount point>
        Unmount the specified mount point and delete everything stored under it.`,
  },
  {
    pattern: /^sys\/auth(\/|$)/,
    text: `List the enabled auth methods.

## DESCRIPTION

Bulwark has one auth method, token/, always enabled.

    GET /
        Lists the enabled auth methods (token/).

    GET /token/tune
        Reads the token method's TTLs (768h by default).`,
  },
  {
    pattern: /^sys\/(policy|policies\/acl)(\/|$)/,
    text: `Read, write, list and delete ACL policies.

## DESCRIPTION

    LIST /
        Lists the policies (default and root included).

    GET /<name>
        Reads a policy's HCL text.

    POST /<name>
        Writes a policy ("policy": HCL text, or base64 of it).

    DELETE /<name>
        Deletes a policy (default and root cannot be deleted).`,
  },
  {
    pattern: /^sys\/(seal-status|seal|unseal|init|health|leader)$/,
    text: `Seal lifecycle: initialise, unseal, seal and report the seal status.

## DESCRIPTION

    GET  sys/seal-status, sys/health, sys/leader, sys/init
        Report the seal state, health and HA leader (no token needed).

    POST sys/init
        Initialises the store: secret_shares and secret_threshold (Shamir).

    POST sys/unseal
        Submits one unseal key share ("key"); "reset": true discards the progress.

    POST sys/seal
        Seals the store (token with sudo).`,
  },
  {
    pattern: /^sys\/(rotate(\/keyring)?(\/config)?|key-status)$/,
    text: `Rotate the barrier's encryption key and configure automatic rotation.

## DESCRIPTION

    POST sys/rotate, sys/rotate/keyring
        Installs a new encryption key; existing data stays readable.

    GET|POST sys/rotate/config, sys/rotate/keyring/config
        Automatic rotation: max_operations, interval, enabled.

    GET sys/key-status
        The current key term and install time.`,
  },
  {
    pattern:
      /^sys\/(rekey|rekey-recovery-key|rotate\/root|rotate\/recovery|generate-root|generate-root-token)(\/|$)/,
    text: `Share-holder operations: rekey the unseal (or recovery) key, generate a new root token.

## DESCRIPTION

    GET|POST|DELETE .../init, .../attempt
        Read, start or cancel the operation.

    POST .../update
        Submit one key share ("key") with the operation's "nonce".`,
  },
];

const TOKEN_TOPIC = `The token auth method: create, look up, renew and revoke tokens.

## PATHS

    create, create-orphan
        Create a token (policies, ttl, explicit_max_ttl, period, num_uses, meta).

    lookup, lookup-self, lookup-accessor
        Read a token's properties.

    renew, renew-self, renew-accessor
        Extend a token's TTL.

    revoke, revoke-self, revoke-accessor, revoke-orphan
        Revoke a token (and its children, except with revoke-orphan).`;

const KV2_TOPIC = `This engine provides a versioned key-value store (KV version 2). Values are
encrypted by the barrier before they reach storage.

## PATHS

    ^config$
        Configures settings for the KV store (max_versions, cas_required, delete_version_after).

    ^data/(?P<path>.*)$
        Write, Patch, Read, and Delete data in the Key-Value Store.

    ^delete/(?P<path>.*)$
        Marks one or more versions as deleted in the KV store.

    ^destroy/(?P<path>.*)$
        Permanently removes one or more versions in the KV store.

    ^metadata/(?P<path>.*)$
        Allows interaction with key metadata and settings in the KV store.

    ^subkeys/(?P<path>.*)$
        Read the structure of a secret entry with the values removed.

    ^undelete/(?P<path>.*)$
        Undeletes one or more versions from the KV store.`;

const KV1_TOPIC = `This engine provides a key-value store (KV version 1): one value per key,
encrypted by the barrier before it reaches storage.

## PATHS

    ^.*$
        GET reads a secret, POST/PUT writes it (replacing it), DELETE deletes it,
        LIST lists the keys below a folder.`;

/** The help text for `path` (below /v1/, no query). */
async function helpFor(ctx: AppContext, path: string): Promise<string> {
  for (const t of SYS_TOPICS) if (t.pattern.test(path)) return t.text;
  if (path === "auth/token" || path.startsWith("auth/token/")) return TOKEN_TOPIC;
  if (path.startsWith("sys/")) return `System backend path ${path}: see Bulwark's API documentation.`;
  const resolved = await ctx.services.mounts.resolve(path);
  // Vault's answer for a path nothing serves.
  if (resolved === undefined)
    throw new HttpError(404, `no handler for route ${JSON.stringify(path)}. route entry not found.`);
  const version = String(resolved.mount.options?.version ?? "1");
  return `Mount ${resolved.mount.path} (kv, version ${version}).\n\n${version === "2" ? KV2_TOPIC : KV1_TOPIC}`;
}

/** Paths Vault serves without a token (their help is public too). */
const UNAUTHENTICATED =
  /^sys\/(seal-status|init|unseal|health|leader|generate-root(\/.*)?|rekey(-recovery-key)?(\/.*)?)$/;

export function registerHelpHook(app: FastifyInstance, ctx: AppContext): void {
  /** Answers `?help=1`; false when the request does not ask for help. */
  const answer = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const query = queryOf(req);
    if (query.help === undefined || queryBool(query, "help") !== true) return false;
    const path = logicalPath(req.url).replace(/\/+$/, "");
    // The unauthenticated endpoints' help needs no token either (as in OpenBao).
    if (!UNAUTHENTICATED.test(path)) {
      const auth = await authenticate(ctx, req);
      // Vault answers help to a token with any capability on the path (not a deny).
      const caps = auth.acl.capabilities(path);
      if (caps.size === 0 || caps.has("deny")) throw permissionDenied();
    }
    await send(reply, { body: { help: await helpFor(ctx, path), see_also: null, openapi: null } });
    return true;
  };
  // A callback hook with a synchronous fast path: every request passes here and almost none asks
  // for help, so no promise is made for them (an async hook cost ~10% of a KV request's CPU).
  app.addHook("preHandler", (req, reply, done) => {
    if (req.method !== "GET" || !req.url.includes("help")) {
      done();
      return;
    }
    answer(req, reply).then(
      (answered) => {
        if (!answered) done();
      },
      (e: unknown) => done(e as Error),
    );
  });
}
