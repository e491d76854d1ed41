"""A fediverse peer built on bovine (https://pypi.org/project/bovine/), an ActivityPub library
written by other people, used by federation-tests/tests/bovine_peer.rs to check Cairn against an
implementation it shares no code with (a second one, besides the Fedify peer).

    .venv/bin/python peer.py PORT        (or PEER_PORT=PORT .venv/bin/python peer.py)

It listens on 127.0.0.1:PORT with the origin http://localhost:PORT and hosts one Person, `bea`
(/users/bea, an RSA key generated at start by bovine.crypto). bovine does the ActivityPub work:

- WebFinger lookups of remote accounts (bovine.clients.lookup_uri_with_webfinger);
- fetching remote actors and objects, with signed GETs (bovine.BovineActor.get);
- building every activity and object it sends (bovine.activitystreams: ActivityFactory,
  ObjectFactory, Actor, OrderedCollection);
- signing every POST it sends (draft-cavage HTTP signature with a Digest, by BovineActor's
  SignedHttpClient);
- verifying the HTTP signature of every POST to its inbox (bovine.crypto's SignatureChecker,
  from build_validate_http_signature_raw: Digest, Date window, the signed string, the RSA
  signature). An activity is recorded as received only when bovine verified the signature and
  the key's owner is the activity's actor; anything else is answered 401 and listed as refused.

aiohttp, which bovine is built on, serves the HTTP. A small control API on the same server lets
the Rust test drive it (JSON in, JSON out):

  GET  /control/health                           -> {actor, inbox}
  POST /control/follow   {handle}                -> {follow, group, inbox}
  POST /control/unfollow {handle}                -> {undo, follow}
  POST /control/reply    {in_reply_to, content}  -> {note, create, parent_author, inbox}
  POST /control/forged_reply {in_reply_to, content} -> {note, create, inbox, status, answer}
       (the same reply signed by bovine with a key that is not bea's; the status is the answer)
  GET  /control/received -> {activities: [...], refused: [...], errors: [...]}

A handle is `@name@host:port`; the peer looks it up over plain http (Cairn in development mode
serves http on localhost). An action that fails answers 500 with {error}.
"""

import json
import logging
import os
import sys
import traceback
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

from aiohttp import web

from bovine import BovineActor
from bovine.activitystreams import Actor, OrderedCollection
from bovine.activitystreams.activity_factory import ActivityFactory
from bovine.activitystreams.object_factory import ObjectFactory
from bovine.clients import lookup_uri_with_webfinger
from bovine.clients.utils import BOVINE_CLIENT_NAME
from bovine.crypto import build_validate_http_signature_raw, generate_rsa_public_private_key
from bovine.crypto.signature import Signature
from bovine.crypto.types import CryptographicIdentifier
from bovine.types import Visibility
from bovine.utils import parse_fediverse_handle, webfinger_response_json

ACTOR = "bea"
ACTIVITY_JSON = "application/activity+json"

log = logging.getLogger("peer")


def now() -> str:
    return datetime.now(tz=timezone.utc).isoformat()


class Peer:
    def __init__(self, port: int):
        self.port = port
        self.origin = f"http://localhost:{port}"
        self.actor_id = f"{self.origin}/users/{ACTOR}"
        self.inbox = f"{self.actor_id}/inbox"
        self.key_id = f"{self.actor_id}#main-key"
        public_pem, private_pem = generate_rsa_public_private_key()
        self.actor_document = Actor(
            id=self.actor_id,
            type="Person",
            name="Bea (bovine peer)",
            preferred_username=ACTOR,
            summary="A test actor on a bovine server.",
            inbox=self.inbox,
            outbox=f"{self.actor_id}/outbox",
            followers=f"{self.actor_id}/followers",
            following=f"{self.actor_id}/following",
            url=self.actor_id,
            public_key=public_pem,
            public_key_name="main-key",
        ).build(visibility=Visibility.OWNER)
        # The signing client: every GET and POST it makes carries bovine's HTTP signature.
        self.client = BovineActor(
            actor_id=self.actor_id, public_key_url=self.key_id, secret=private_pem
        )
        self.activity_factory = ActivityFactory(self.actor_document, id_generator=self.new_id)
        # With `actor`, the object factory fetches (signed) the actors it mentions.
        self.object_factory = ObjectFactory(
            actor_information=self.actor_document, actor=self.client, id_generator=self.new_id
        )
        # The same keyId with another private key: what a forger without bea's key would send.
        _, forger_pem = generate_rsa_public_private_key()
        self.forger = BovineActor(
            actor_id=self.actor_id, public_key_url=self.key_id, secret=forger_pem
        )
        self.validate = build_validate_http_signature_raw(self.retrieve_key)
        # What this peer published, by path, served at its id.
        self.objects: dict[str, dict] = {}
        # Follows sent and not undone, by the followed actor's id.
        self.follows: dict[str, dict] = {}
        # What the test reads back.
        self.activities: list[dict] = []
        self.refused: list[dict] = []
        self.errors: list[str] = []

    def new_id(self) -> str:
        return f"{self.actor_id}/objects/{uuid.uuid4()}"

    def publish(self, document: dict) -> None:
        """Serves `document` at its id from now on."""
        path = urlparse(document["id"]).path
        self.objects[path] = document

    # --- verifying what arrives ----------------------------------------------------------------

    async def retrieve_key(self, key_id: str) -> CryptographicIdentifier | None:
        """bovine's key retriever: fetches the keyId (a signed GET) and reads the key in it, either
        the document itself or the publicKey of the actor served there (as Mastodon does)."""
        document = await self.client.get(key_id, fail_silently=True)
        log.info("fetched key %s: %s", key_id,
                 document.get("id") if isinstance(document, dict) else document)
        if not isinstance(document, dict):
            log.warning("key %s: no JSON document", key_id)
            return None
        if "publicKeyPem" in document:
            # A bare key document: its owner must at least live where the key does.
            if origin(document.get("owner")) != origin(key_id):
                log.warning("key %s names an owner elsewhere: %s", key_id, document.get("owner"))
                return None
            return CryptographicIdentifier.from_public_key(document)
        keys = document.get("publicKey")
        if isinstance(keys, dict):
            keys = [keys]
        for key in keys or []:
            if isinstance(key, dict) and key.get("id") == key_id:
                # The key must say it belongs to the actor it was served with.
                if key.get("owner") != document.get("id"):
                    log.warning("key %s is owned by %s, served by %s", key_id,
                                key.get("owner"), document.get("id"))
                    return None
                return CryptographicIdentifier.from_public_key(key)
        log.warning("key %s: not found in %s", key_id, document.get("id"))
        return None

    async def post_inbox(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name != ACTOR:
            return web.json_response({"error": f"no actor {name}"}, status=404)
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}

        async def get_body() -> bytes:
            return body

        try:
            activity = json.loads(body)
        except ValueError:
            activity = None
        entry = {
            "type": activity.get("type") if isinstance(activity, dict) else None,
            "id": activity.get("id") if isinstance(activity, dict) else None,
            "actor": bovine_id(activity.get("actor")) if isinstance(activity, dict) else None,
            "inbox": request.path,
            "activity": activity,
            "headers": headers,
            "received_at": now(),
        }

        def refuse(reason: str) -> web.Response:
            entry["reason"] = reason
            self.refused.append(entry)
            log.warning("refused %s %s: %s", entry["type"], entry["id"], reason)
            return web.json_response({"error": reason}, status=401)

        signature = headers.get("signature")
        key_id = None
        if signature:
            try:
                key_id = Signature.from_signature_header(signature).key_id
            except Exception as err:  # a header bovine cannot parse is refused below
                log.warning("unparseable Signature header %r: %s", signature, err)
        # bovine checks the Digest, the Date window, the signed string and the RSA signature,
        # and returns the key's owner when (and only when) all of that holds.
        owner = await self.validate(request.method, str(request.url), headers, get_body)
        entry["signature"] = {"verified": owner is not None, "owner": owner, "keyId": key_id}
        if owner is None:
            return refuse("bovine did not verify the HTTP signature")
        if not isinstance(activity, dict):
            return refuse("the body is not a JSON object")
        if owner != entry["actor"]:
            return refuse(f"signed by {owner}'s key, but the actor is {entry['actor']}")
        self.activities.append(entry)
        log.info("received %s %s from %s, verified with %s", entry["type"], entry["id"], owner,
                 key_id)
        return web.Response(status=202)

    # --- actions -------------------------------------------------------------------------------

    async def lookup_actor(self, handle: str) -> dict:
        """WebFinger (bovine) and then the actor document (a signed GET by bovine)."""
        _, domain = parse_fediverse_handle(handle)
        if not domain:
            raise ValueError(f"{handle} is not a handle @name@host")
        actor_id, _ = await lookup_uri_with_webfinger(
            self.client.session, "acct:" + handle.removeprefix("@"), domain=f"http://{domain}"
        )
        if not actor_id:
            raise ValueError(f"WebFinger found no actor for {handle}")
        return await self.fetch_actor(actor_id)

    async def fetch_actor(self, actor_id: str) -> dict:
        actor = await self.client.get(actor_id)
        log.info("fetched actor %s: %s", actor_id,
                 actor.get("type") if isinstance(actor, dict) else actor)
        if not isinstance(actor, dict) or not actor.get("inbox"):
            raise ValueError(f"{actor_id} is not an actor with an inbox: {actor}")
        return actor

    async def post(self, inbox: str, activity: dict, signer: BovineActor) -> tuple[int, str]:
        """POSTs the activity, signed by bovine (BovineActor's SignedHttpClient: draft-cavage over
        (request-target) host date digest content-type); returns the status and the answer."""
        response = await signer.client.post(inbox, json.dumps(activity))
        async with response:
            answer = await response.text()
        log.info("POST %s %s to %s -> %d %s", activity.get("type"), activity.get("id"), inbox,
                 response.status, answer)
        return response.status, answer

    async def send(self, inbox: str, activity: dict) -> int:
        """POSTs the activity signed with bea's key; raises unless the answer is 2xx."""
        status, answer = await self.post(inbox, activity, self.client)
        if not 200 <= status < 300:
            raise RuntimeError(f"{inbox} answered {status} to {activity.get('type')}: {answer}")
        return status

    async def follow(self, body: dict) -> dict:
        group = await self.lookup_actor(body["handle"])
        follow = self.activity_factory.follow(group["id"]).build()
        self.publish(follow)
        await self.send(group["inbox"], follow)
        self.follows[group["id"]] = follow
        return {"follow": follow["id"], "group": group["id"], "inbox": group["inbox"]}

    async def unfollow(self, body: dict) -> dict:
        group = await self.lookup_actor(body["handle"])
        follow = self.follows.get(group["id"])
        if follow is None:
            raise ValueError(f"{ACTOR} does not follow {group['id']}")
        # bovine's Undo names the Follow by its id (it embeds it only when asked to).
        undo = self.activity_factory.undo(follow).build()
        self.publish(undo)
        await self.send(group["inbox"], undo)
        del self.follows[group["id"]]
        return {"undo": undo["id"], "follow": follow["id"]}

    async def build_reply(self, body: dict) -> tuple[dict, dict, dict, str]:
        """A Create of a reply to `in_reply_to`: (note, create, parent's author, inbox)."""
        parent = await self.client.get(body["in_reply_to"])
        if not isinstance(parent, dict) or not parent.get("attributedTo"):
            raise ValueError(f"{body['in_reply_to']} is not a post with an author: {parent}")
        author = await self.fetch_actor(bovine_id(parent["attributedTo"]))
        # bovine's reply: to the parent's author, cc everyone the parent was addressed to, with a
        # Mention of the author (fetched again by bovine to name it).
        reply = await self.object_factory.reply_with_mention(parent, content=body["content"])
        note = reply.build()
        note["url"] = note["id"]
        create = self.activity_factory.create(note).build()
        inbox = (author.get("endpoints") or {}).get("sharedInbox") or author["inbox"]
        return note, create, author, inbox

    async def reply(self, body: dict) -> dict:
        note, create, author, inbox = await self.build_reply(body)
        self.publish(note)
        self.publish(create)
        await self.send(inbox, create)
        return {"note": note["id"], "create": create["id"], "parent_author": author["id"],
                "inbox": inbox}

    async def forged_reply(self, body: dict) -> dict:
        """Like reply, but signed with a key that is not bea's (same keyId), and not served at its
        id: a receiver that checks signatures refuses it."""
        note, create, _, inbox = await self.build_reply(body)
        status, answer = await self.post(inbox, create, self.forger)
        return {"note": note["id"], "create": create["id"], "inbox": inbox, "status": status,
                "answer": answer}

    # --- HTTP ----------------------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if request.method == "GET" and action == "health":
            return web.json_response({"actor": self.actor_id, "inbox": self.inbox})
        if request.method == "GET" and action == "received":
            return web.json_response(
                {"activities": self.activities, "refused": self.refused, "errors": self.errors}
            )
        handler = {
            "follow": self.follow,
            "unfollow": self.unfollow,
            "reply": self.reply,
            "forged_reply": self.forged_reply,
        }.get(action)
        if request.method != "POST" or handler is None:
            return web.json_response({"error": f"no {request.method} {request.path}"},
                                     status=404)
        body = await request.json()
        log.info("control %s %s", action, json.dumps(body))
        try:
            return web.json_response(await handler(body))
        except Exception as err:
            message = "".join(traceback.format_exception(err))
            self.errors.append(f"control {action}: {message}")
            log.error("control %s failed: %s", action, message)
            return web.json_response({"error": message}, status=500)

    async def get_actor(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != ACTOR:
            return web.json_response({"error": "no such actor"}, status=404)
        return activity_json(self.actor_document)

    async def get_collection(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != ACTOR:
            return web.json_response({"error": "no such actor"}, status=404)
        return activity_json(OrderedCollection(id=f"{self.origin}{request.path}", count=0).build())

    async def get_object(self, request: web.Request) -> web.Response:
        document = self.objects.get(request.path)
        if document is None:
            return web.json_response({"error": "not found"}, status=404)
        return activity_json(document)

    async def webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        name, domain = parse_fediverse_handle(resource)
        if name != ACTOR or domain != f"localhost:{self.port}":
            return web.json_response({"error": f"no {resource}"}, status=404)
        return web.json_response(
            webfinger_response_json(f"acct:{ACTOR}@localhost:{self.port}", self.actor_id),
            content_type="application/jrd+json",
        )

    @web.middleware
    async def log_requests(self, request: web.Request, handler):
        try:
            response = await handler(request)
        except web.HTTPException as err:
            response = err
        except Exception as err:
            message = "".join(traceback.format_exception(err))
            self.errors.append(f"HTTP {request.method} {request.path}: {message}")
            log.error("HTTP %s %s failed: %s", request.method, request.path, message)
            response = web.json_response({"error": str(err)}, status=500)
        if not request.path.startswith("/control/"):
            log.info("%s %s -> %d", request.method, request.path_qs, response.status)
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.log_requests])
        app.router.add_get("/control/{action}", self.control)
        app.router.add_post("/control/{action}", self.control)
        app.router.add_get("/.well-known/webfinger", self.webfinger)
        app.router.add_get("/users/{name}", self.get_actor)
        app.router.add_post("/users/{name}/inbox", self.post_inbox)
        for collection in ["outbox", "followers", "following"]:
            app.router.add_get(f"/users/{{name}}/{collection}", self.get_collection)
        app.router.add_get("/users/{name}/objects/{id}", self.get_object)
        app.on_startup.append(self.start_client)
        app.on_cleanup.append(self.stop_client)
        return app

    async def start_client(self, _app) -> None:
        await self.client.init()
        await self.forger.init(session=self.client.session)

    async def stop_client(self, _app) -> None:
        if self.client.session is not None:
            await self.client.session.close()


def bovine_id(value) -> str | None:
    """The id of a reference that is a string or an object with an id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def origin(url) -> str | None:
    """scheme://host:port of a URL, or None."""
    if not isinstance(url, str):
        return None
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def activity_json(document: dict) -> web.Response:
    return web.Response(text=json.dumps(document), content_type=ACTIVITY_JSON)


def main() -> None:
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PEER_PORT", "")
    if not arg.isdigit() or int(arg) <= 0:
        print("usage: peer.py PORT (or PEER_PORT=PORT peer.py)", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    peer = Peer(int(arg))
    log.info("bovine %s peer on 127.0.0.1:%d; actor %s",
             BOVINE_CLIENT_NAME, peer.port, peer.actor_id)
    web.run_app(peer.app(), host="127.0.0.1", port=peer.port, print=None,
                access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
