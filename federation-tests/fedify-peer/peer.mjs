// A fediverse peer built on Fedify (https://fedify.dev), an ActivityPub framework written by
// other people, used by federation-tests/tests/fedify_peer.rs to check Cairn against an
// implementation it shares no code with.
//
//   node peer.mjs PORT        (or PEER_PORT=PORT node peer.mjs)
//
// It listens on 127.0.0.1:PORT with the origin http://localhost:PORT and hosts one Person,
// `alex` (/users/alex, RSA keys generated at start). Fedify does all the ActivityPub work:
// WebFinger lookups, fetching and parsing remote actors, signing what it sends (draft-cavage
// HTTP signatures) and verifying the HTTP signature of every activity POSTed to its inboxes.
// An activity reaches the inbox listener below only after Fedify has verified it; a request
// that fails verification is answered 401 by Fedify and listed under `refused`.
//
// A small control API on the same server lets the Rust test drive it (JSON in, JSON out):
//
//   GET  /control/health                                      → { actor, inbox, sharedInbox }
//   POST /control/follow   { handle }                         → { follow, group }
//   POST /control/unfollow { handle }                         → { undo }
//   POST /control/note     { to_group, content, hashtags }    → { note, create }
//   POST /control/reply    { in_reply_to, group, content, hashtags? } → { note, create, parent_author }
//   GET  /control/received → { activities: [...], refused: [...], errors: [...] }
//
// A handle is `@name@host:port`. An action that fails answers 500 with { error }.

import { AsyncLocalStorage } from "node:async_hooks";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import {
  Activity,
  Create,
  Endpoints,
  Follow,
  Hashtag,
  Mention,
  MemoryKvStore,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Undo,
  createFederation,
  generateCryptoKeyPair,
  isActor,
  verifyRequest,
} from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";
import { configure } from "@logtape/logtape";

const port = Number(process.argv[2] ?? process.env.PEER_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node peer.mjs PORT (or PEER_PORT=PORT)");
  process.exit(2);
}
const origin = `http://localhost:${port}`;
const ACTOR = "alex";

function log(...parts) {
  console.log(new Date().toISOString(), "[peer]", ...parts);
}

// --- what the test reads back ----------------------------------------------------------------

/** Activities that passed Fedify's signature check and reached the inbox listener. */
const activities = [];
/** Inbox POSTs Fedify answered with an error status (e.g. 401 for a bad signature). */
const refused = [];
/** Errors Fedify logged (signature failures, failed fetches, failed deliveries). */
const errors = [];

// Fedify logs through LogTape; print its records and keep the errors for /control/received.
await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: {
    peer(record) {
      const message = record.message
        .map((part) => (typeof part === "string" ? part : inspect(part)))
        .join("");
      const line = `${record.level} ${record.category.join("·")}: ${message}`;
      console.log(new Date(record.timestamp).toISOString(), "[fedify]", line);
      if (record.level === "error" || record.level === "fatal") errors.push(line);
    },
  },
  loggers: [
    { category: "fedify", lowestLevel: "info", sinks: ["peer"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["peer"] },
  ],
});

function inspect(value) {
  if (value instanceof Error) return value.stack ?? String(value);
  if (value instanceof URL) return value.href;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// --- development-mode allowance --------------------------------------------------------------

// Fedify 1.5 always asks for WebFinger over https (RFC 7033 requires it). Cairn in development
// mode serves plain http on localhost, so WebFinger requests to loopback hosts, and only those,
// go over http. Everything else Fedify fetches is left alone.
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (
    url.protocol === "https:" &&
    ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) &&
    url.pathname === "/.well-known/webfinger"
  ) {
    url.protocol = "http:";
    log(`WebFinger over http for a loopback host: ${url.href}`);
    input = input instanceof Request ? new Request(url, input) : url;
  }
  return realFetch(input, init);
};

// --- the federation ---------------------------------------------------------------------------

const federation = createFederation({
  kv: new MemoryKvStore(),
  // No queue: sendActivity delivers before it returns (and throws if delivery fails), and
  // inbox listeners run before the inbox answers.
  origin,
  // Cairn and this peer both run on 127.0.0.1. Signatures are still verified.
  allowPrivateAddress: true,
  userAgent: "cairn-fedify-peer (Fedify 1.5.9)",
});

const keyPairs = [await generateCryptoKeyPair("RSASSA-PKCS1-v1_5")];
/** Notes alex has published, by id, served at their ids. */
const notes = new Map();
/** Follows alex has sent and not undone, by the followed actor's id. */
const follows = new Map();

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ACTOR) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Alex (Fedify peer)",
      summary: "A test actor on a Fedify server.",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === ACTOR ? keyPairs : []));

federation.setObjectDispatcher(
  Note,
  "/users/{identifier}/notes/{id}",
  (ctx, values) => notes.get(ctx.getObjectUri(Note, values).href) ?? null,
);

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  // Every activity type: Fedify hands over an activity only once its signature is verified.
  .on(Activity, async (ctx, activity) => {
    const { raw, path, signature } = ctx.data;
    const entry = {
      type: raw?.type ?? activity.constructor.name,
      id: activity.id?.href ?? null,
      actor: activity.actorId?.href ?? null,
      inbox: path,
      // Fedify's inbox checked the HTTP signature (and that the signer owns the actor) before
      // calling us; `signature` is what Fedify's verifyRequest says of the same request.
      signature,
      activity: raw,
      received_at: new Date().toISOString(),
    };
    activities.push(entry);
    log(`received ${entry.type} ${entry.id} from ${entry.actor} at ${path}; key ${signature.keyId}`);
  })
  .onError((_ctx, error) => {
    errors.push(`inbox listener: ${error?.stack ?? error}`);
    log("inbox listener error:", error);
  });

// --- actions for the control API ---------------------------------------------------------------

function context() {
  return federation.createContext(new URL(origin), {});
}

async function lookupActor(ctx, handle) {
  const actor = await ctx.lookupObject(handle);
  if (actor == null || !isActor(actor)) {
    throw new Error(`${handle} did not resolve to an actor (got ${actor?.constructor?.name ?? "nothing"})`);
  }
  if (actor.inboxId == null) throw new Error(`${handle} has no inbox`);
  return actor;
}

async function follow({ handle }) {
  const ctx = context();
  const group = await lookupActor(ctx, handle);
  const me = ctx.getActorUri(ACTOR);
  const activity = new Follow({
    id: new URL(`${me.href}/follows/${randomUUID()}`),
    actor: me,
    object: group.id,
    to: group.id,
  });
  await ctx.sendActivity({ identifier: ACTOR }, group, activity);
  follows.set(group.id.href, { activity, group });
  log(`sent Follow ${activity.id.href} to ${group.id.href} (inbox ${group.inboxId.href})`);
  return { follow: activity.id.href, group: group.id.href, inbox: group.inboxId.href };
}

async function unfollow({ handle }) {
  const ctx = context();
  const group = await lookupActor(ctx, handle);
  const followed = follows.get(group.id.href);
  if (followed == null) throw new Error(`alex does not follow ${group.id.href}`);
  const me = ctx.getActorUri(ACTOR);
  const activity = new Undo({
    id: new URL(`${me.href}/undos/${randomUUID()}`),
    actor: me,
    object: followed.activity,
    to: group.id,
  });
  await ctx.sendActivity({ identifier: ACTOR }, group, activity);
  follows.delete(group.id.href);
  log(`sent Undo ${activity.id.href} of ${followed.activity.id.href}`);
  return { undo: activity.id.href };
}

/** Publishes a Note by alex, mentioning `mentioned`, to their inboxes. */
async function publish(ctx, { content, hashtags = [], mentioned = [], inReplyTo = null }) {
  const me = ctx.getActorUri(ACTOR);
  const id = ctx.getObjectUri(Note, { identifier: ACTOR, id: randomUUID() });
  const tags = [];
  let html = "<p>";
  for (const actor of mentioned) {
    const name = `@${actor.preferredUsername}@${actor.id.host}`;
    html += `<span class="h-card"><a href="${actor.url?.href ?? actor.id.href}" class="u-url mention">@<span>${actor.preferredUsername}</span></a></span> `;
    tags.push(new Mention({ href: actor.id, name }));
  }
  html += escapeHtml(content);
  for (const hashtag of hashtags) {
    const tag = hashtag.replace(/^#/, "");
    const href = new URL(`/tags/${encodeURIComponent(tag.toLowerCase())}`, origin);
    html += ` <a href="${href.href}" class="mention hashtag" rel="tag">#<span>${escapeHtml(tag)}</span></a>`;
    tags.push(new Hashtag({ href, name: `#${tag}` }));
  }
  html += "</p>";
  const published = Temporal.Now.instant();
  const note = new Note({
    id,
    attribution: me,
    content: html,
    mediaType: "text/html",
    published,
    url: id,
    to: PUBLIC_COLLECTION,
    ccs: mentioned.map((actor) => actor.id),
    tags,
    replyTarget: inReplyTo,
  });
  notes.set(id.href, note);
  const create = new Create({
    id: new URL(`${id.href}#create`),
    actor: me,
    object: note,
    published,
    to: PUBLIC_COLLECTION,
    ccs: mentioned.map((actor) => actor.id),
  });
  await ctx.sendActivity({ identifier: ACTOR }, mentioned, create);
  log(`sent Create ${create.id.href} of ${id.href} to ${mentioned.map((a) => a.id.href).join(", ")}`);
  return { note: id.href, create: create.id.href };
}

async function note({ to_group, content, hashtags }) {
  const ctx = context();
  const group = await lookupActor(ctx, to_group);
  return await publish(ctx, { content, hashtags, mentioned: [group] });
}

async function reply({ in_reply_to, group, content, hashtags }) {
  const ctx = context();
  const parent = await ctx.lookupObject(in_reply_to);
  if (parent == null || parent.attributionId == null) {
    throw new Error(`${in_reply_to} did not resolve to a post with an author`);
  }
  const author = await lookupActor(ctx, parent.attributionId.href);
  const mentioned = [author];
  if (group) mentioned.push(await lookupActor(ctx, group));
  const sent = await publish(ctx, {
    content,
    hashtags,
    mentioned,
    inReplyTo: parent.id,
  });
  return { ...sent, parent_author: author.id.href };
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// --- HTTP -------------------------------------------------------------------------------------

const actions = { follow, unfollow, note, reply };

async function control(request, path) {
  if (request.method === "GET" && path === "/control/health") {
    const ctx = context();
    return json(200, {
      actor: ctx.getActorUri(ACTOR).href,
      inbox: ctx.getInboxUri(ACTOR).href,
      sharedInbox: ctx.getInboxUri().href,
    });
  }
  if (request.method === "GET" && path === "/control/received") {
    return json(200, { activities, refused, errors });
  }
  const action = actions[path.slice("/control/".length)];
  if (request.method !== "POST" || action == null) return json(404, { error: `no ${path}` });
  const body = await request.json();
  log(`control ${path} ${JSON.stringify(body)}`);
  try {
    return json(200, await action(body));
  } catch (error) {
    log(`control ${path} failed:`, error?.stack ?? error);
    return json(500, { error: String(error?.stack ?? error) });
  }
}

function json(status, value) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

const isInbox = (path) => path === "/inbox" || /^\/users\/[^/]+\/inbox$/.test(path);

async function handle(request) {
  const path = new URL(request.url).pathname;
  if (path.startsWith("/control/")) return await control(request, path);
  if (request.method !== "POST" || !isInbox(path)) {
    return await federation.fetch(request, { contextData: {} });
  }
  // An inbox POST: Fedify's handler verifies it; we also ask Fedify's verifyRequest about a
  // copy of it, so each recorded activity says which key signed it.
  const copy = request.clone();
  const text = await request.clone().text();
  let raw = null;
  try {
    raw = JSON.parse(text);
  } catch {
    // Fedify answers 400 below.
  }
  const ctx = context();
  const key = await verifyRequest(copy, {
    documentLoader: ctx.documentLoader,
    contextLoader: ctx.contextLoader,
  });
  const signature = {
    verified: key != null,
    keyId: key?.id?.href ?? null,
    owner: key?.ownerId?.href ?? null,
    header: request.headers.get("signature"),
  };
  const response = await federation.fetch(request, {
    contextData: { raw, path, signature },
  });
  if (response.status >= 400) {
    const answer = await response.clone().text();
    refused.push({ path, status: response.status, answer, signature, activity: raw });
    log(`refused ${raw?.type} ${raw?.id} at ${path}: ${response.status} ${answer}`);
  }
  return response;
}

const server = createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const hasBody = !["GET", "HEAD"].includes(req.method);
    const request = new Request(new URL(req.url, origin), {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const response = await handle(request);
    if (!req.url.startsWith("/control/")) {
      log(`${req.method} ${req.url} → ${response.status}`);
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    errors.push(`HTTP ${req.method} ${req.url}: ${error?.stack ?? error}`);
    log(`HTTP ${req.method} ${req.url} failed:`, error?.stack ?? error);
    res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(error));
  }
});

server.listen(port, "127.0.0.1", () => {
  log(`Fedify peer listening on 127.0.0.1:${port}; actor ${origin}/users/${ACTOR}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
