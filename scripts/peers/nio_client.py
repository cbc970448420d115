#!/usr/bin/python3
"""Matrix E2EE test client (matrix-nio + python3-olm from Debian) printing JSON.

Plays the real Matrix user in the bridge's e2e tests: it reads portal rooms through Megolm like a
user's client would. Its device (keys, sessions, sync token) lives in --store, so successive
invocations are one device.

  nio_client.py --hs URL --user @u:localhost --password PW --store DIR COMMAND [ARGS]

Commands (each prints one JSON object; errors: {"error": ...} and exit 1):
  login                                  -> {"user_id","device_id"}  (first call logs in, later calls reuse)
  create-room [--invite UID]... [--plain] [--name N] -> {"room_id"}   (encrypted unless --plain)
  join ROOM                              -> {"room_id"}
  invites                                -> {"rooms": [room ids we are invited to]}
  send ROOM TEXT                         -> {"event_id"}              (Megolm in encrypted rooms)
        serve only: "content" (raw content) and "type" (default m.room.message) send any event;
        "strict": true shares the room key only with verified devices (see trust-cross-signed)
        and fails if a member has another device
  trust-cross-signed (serve only: {"cmd":"trust-cross-signed","user": UID})
        -> {"devices": {device_id: bool}}  reads /keys/query and marks verified exactly the devices
           of UID signed by UID's self-signing key, itself signed by UID's master key: the client of
           a user who accepts keys only from cross-signed devices; read reports "verified" per
           message (sent by a verified device; never for ghosts,
           whose messages the bot's device encrypts) and "key_device_verified" (the room key came
           from a device marked verified, of "key_device_user")
  read ROOM [--wait S] [--expect TEXT] [--count N] [--limit L]
        -> {"room_id","encrypted","messages":[{event_id,sender,type,body,msgtype,encrypted,decrypted,ts}]}
           oldest first; waits up to S seconds (default 0) until a message with body TEXT, or N
           messages, is present; exit 1 on timeout (the JSON still lists what was seen)
  sync                                   -> {"rooms": [joined room ids]}
  send-file ROOM (serve only: {"cmd":"send-file","room","name","mimetype","msgtype","data": base64})
        -> {"event_id"}   (the file is encrypted as an attachment in encrypted rooms)
  download-file (serve only: {"cmd":"download-file","room","event_id"})
        -> {"data": base64, "encrypted_file": bool, "body", "msgtype", "mimetype"}
  serve                                  one JSON command per stdin line, e.g.
        {"cmd":"send","room":"!r:localhost","text":"hi"}; one JSON answer per line

Run with Debian's interpreter (/usr/bin/python3): a pyenv python3 lacks nio/olm.
"""
import argparse
import asyncio
import base64
import io
import json
import os
import sys
import time

import aiohttp
import olm

from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from nio.exceptions import OlmUnverifiedDeviceError
from nio import (AsyncClient, DownloadError, UploadError, AsyncClientConfig, JoinError, LoginResponse, MegolmEvent,
                 RoomCreateError, RoomMessagesError, RoomSendError, SyncError)


class Fail(Exception):
    pass


def session_path(store):
    return os.path.join(store, "session.json")


async def open_client(a):
    os.makedirs(a.store, exist_ok=True)
    cfg = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True, max_timeout_retry_wait_time=5)
    c = AsyncClient(a.hs, a.user, store_path=a.store, config=cfg)
    sp = session_path(a.store)
    if os.path.exists(sp):
        with open(sp) as f:
            s = json.load(f)
        c.restore_login(s["user_id"], s["device_id"], s["access_token"])
    else:
        r = await c.login(a.password, device_name=a.device_name)
        if not isinstance(r, LoginResponse):
            raise Fail(f"login failed: {r}")
        with open(sp, "w") as f:
            json.dump({"user_id": r.user_id, "device_id": r.device_id, "access_token": r.access_token}, f)
    if c.should_upload_keys:
        await c.keys_upload()
    await sync(c)
    return c


async def sync(c, timeout_ms=0):
    r = await c.sync(timeout=timeout_ms, full_state=True)
    if isinstance(r, SyncError):
        raise Fail(f"sync failed: {r}")
    # Keys of other devices, so that sending shares the room key with all of them.
    if c.should_query_keys:
        await c.keys_query()
    if c.should_claim_keys:
        users = c.get_users_for_key_claiming()
        if users:
            await c.keys_claim(users)
    return r


def canonical(obj):
    obj = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_by(obj, user, key_id, key):
    sig = ((obj.get("signatures") or {}).get(user) or {}).get("ed25519:" + key_id)
    if not sig:
        return False
    try:
        olm.ed25519_verify(key, canonical(obj), sig)
        return True
    except olm.OlmVerifyError:
        return False


def only_key(k):
    (key_id, key), = k["keys"].items()
    return key_id.split(":", 1)[1], key


async def trust_cross_signed(c, user):
    await sync(c)
    async with aiohttp.ClientSession() as s:
        async with s.post(c.homeserver + "/_matrix/client/v3/keys/query", json={"device_keys": {user: []}},
                          headers={"Authorization": "Bearer " + c.access_token}) as r:
            q = await r.json()
    master, ssk = (q.get("master_keys") or {}).get(user), (q.get("self_signing_keys") or {}).get(user)
    chain = None
    if master and ssk:
        mk_id, mk = only_key(master)
        if signed_by(ssk, user, mk_id, mk):
            chain = only_key(ssk)
    # sync() above queried the keys of users nio shares encrypted rooms with.
    out = {}
    for dev_id, dk in ((q.get("device_keys") or {}).get(user) or {}).items():
        ok = chain is not None and signed_by(dk, user, chain[0], chain[1])
        out[dev_id] = ok
        dev = c.device_store[user].get(dev_id) if user in c.device_store.users else None
        if dev is not None:
            if ok:
                c.verify_device(dev)
            else:
                c.unverify_device(dev)
    return out


def key_device(c, ev):
    """The device that sent the room key of a decrypted event (by its curve25519 key), as
    (user, verified): bridged messages of ghosts are encrypted by the bot's device, so nio's own
    per-sender "verified" is never set for them."""
    key = getattr(ev, "sender_key", None)
    if not key or c is None:
        return None, False
    for user in c.device_store.users:
        for dev in c.device_store.active_user_devices(user):
            if dev.curve25519 == key:
                return user, c.olm.is_device_verified(dev)
    return None, False


def event_json(ev, encrypted, c=None):
    src = getattr(ev, "source", {}) or {}
    content = src.get("content", {}) if not encrypted else {}
    return {
        "event_id": ev.event_id,
        "sender": ev.sender,
        "type": type(ev).__name__,
        "body": getattr(ev, "body", None),
        "msgtype": getattr(ev, "source", {}).get("content", {}).get("msgtype") if not isinstance(ev, MegolmEvent) else None,
        "formatted_body": getattr(ev, "formatted_body", None),
        "encrypted": encrypted,
        "decrypted": encrypted and not isinstance(ev, MegolmEvent),
        "ts": ev.server_timestamp,
        "verified": bool(getattr(ev, "verified", False)),
        "key_device_user": key_device(c, ev)[0] if encrypted else None,
        "key_device_verified": key_device(c, ev)[1] if encrypted else False,
        "content": content if content else None,
    }


async def read_room(c, room, limit):
    r = await c.room_messages(room, start=c.next_batch or "", limit=limit)
    if isinstance(r, RoomMessagesError):
        raise Fail(f"messages failed: {r}")
    out = []
    for ev in reversed(r.chunk):
        if not hasattr(ev, "event_id") or not hasattr(ev, "server_timestamp"):
            continue
        enc = isinstance(ev, MegolmEvent) or bool(getattr(ev, "decrypted", False)) or \
            (getattr(ev, "source", {}) or {}).get("type") == "m.room.encrypted"
        name = type(ev).__name__
        # Decrypted attachments are RoomEncryptedImage, RoomEncryptedFile, …
        if name.startswith(("RoomMessage", "RoomEncrypted")) or isinstance(ev, MegolmEvent) or name in ("UnknownEvent", "UnknownEncryptedEvent"):
            out.append(event_json(ev, enc, c))
    return out


async def cmd(c, name, args):
    if name == "login":
        return {"user_id": c.user_id, "device_id": c.device_id}
    if name == "sync":
        await sync(c)
        return {"rooms": sorted(c.rooms.keys())}
    if name == "invites":
        await sync(c)
        return {"rooms": sorted(c.invited_rooms.keys())}
    if name == "create-room":
        initial = [] if args.get("plain") else [{"type": "m.room.encryption", "state_key": "",
                                                 "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
        r = await c.room_create(name=args.get("name"), invite=args.get("invite") or [], initial_state=initial,
                                is_direct=bool(args.get("direct")))
        if isinstance(r, RoomCreateError):
            raise Fail(f"create room failed: {r}")
        await sync(c)
        return {"room_id": r.room_id}
    if name == "join":
        r = await c.join(args["room"])
        if isinstance(r, JoinError):
            raise Fail(f"join failed: {r}")
        await sync(c)
        return {"room_id": r.room_id}
    if name == "send":
        await sync(c)
        content = args.get("content") or {"msgtype": args.get("msgtype") or "m.text", "body": args["text"]}
        try:
            r = await c.room_send(args["room"], args.get("type") or "m.room.message", content,
                                  ignore_unverified_devices=not args.get("strict"))
        except OlmUnverifiedDeviceError as e:
            raise Fail(f"refused to share the room key with an unverified device: {e}")
        if isinstance(r, RoomSendError):
            raise Fail(f"send failed: {r}")
        return {"event_id": r.event_id}
    if name == "trust-cross-signed":
        return {"devices": await trust_cross_signed(c, args["user"])}
    if name == "send-file":
        await sync(c)
        data = base64.b64decode(args["data"])
        room_obj = c.rooms.get(args["room"])
        encrypted = bool(room_obj and room_obj.encrypted)
        payload, keys = (encrypt_attachment(data) if encrypted else (data, None))
        up, _ = await c.upload(lambda *_: io.BytesIO(payload), "application/octet-stream" if encrypted else args["mimetype"],
                               args["name"], filesize=len(payload))
        if isinstance(up, UploadError):
            raise Fail(f"upload failed: {up}")
        content = {"msgtype": args["msgtype"], "body": args["name"],
                   "info": {"mimetype": args["mimetype"], "size": len(data)}}
        if encrypted:
            content["file"] = dict(keys, url=up.content_uri)
        else:
            content["url"] = up.content_uri
        r = await c.room_send(args["room"], "m.room.message", content, ignore_unverified_devices=True)
        if isinstance(r, RoomSendError):
            raise Fail(f"send failed: {r}")
        return {"event_id": r.event_id}
    if name == "download-file":
        await sync(c)
        r = await c.room_messages(args["room"], start=c.next_batch or "", limit=100)
        if isinstance(r, RoomMessagesError):
            raise Fail(f"messages failed: {r}")
        ev = next((e for e in r.chunk if getattr(e, "event_id", None) == args["event_id"]), None)
        if ev is None or not getattr(ev, "url", None):
            raise Fail(f"no file event {args['event_id']} ({type(ev).__name__})")
        dl = await c.download(mxc=ev.url)
        if isinstance(dl, DownloadError):
            raise Fail(f"download failed: {dl}")
        data, enc = dl.body, hasattr(ev, "iv") and hasattr(ev, "key")
        if enc:
            data = decrypt_attachment(data, ev.key["k"], ev.hashes["sha256"], ev.iv)
        src = (getattr(ev, "source", {}) or {}).get("content", {})
        return {"data": base64.b64encode(data).decode(), "encrypted_file": enc, "body": getattr(ev, "body", None),
                "msgtype": src.get("msgtype"), "mimetype": getattr(ev, "mimetype", None) or (src.get("info") or {}).get("mimetype")}
    if name == "read":
        room, wait = args["room"], float(args.get("wait") or 0)
        expect, count, limit = args.get("expect"), int(args.get("count") or 0), int(args.get("limit") or 50)
        deadline = time.monotonic() + wait
        while True:
            await sync(c, timeout_ms=500 if wait else 0)
            msgs = await read_room(c, room, limit)
            ok = (expect is None or any(m["body"] == expect for m in msgs)) and len(msgs) >= count
            if ok or time.monotonic() >= deadline:
                room_obj = c.rooms.get(room)
                res = {"room_id": room, "encrypted": bool(room_obj and room_obj.encrypted), "messages": msgs}
                if not ok:
                    res["error"] = f"timeout after {wait}s waiting for " + (f"body {expect!r}" if expect else f"{count} messages")
                return res
    raise Fail(f"unknown command {name!r}")


async def serve(c):
    loop = asyncio.get_event_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            res = await cmd(c, req.pop("cmd"), req)
        except (Fail, KeyError, ValueError) as e:
            res = {"error": str(e)}
        print(json.dumps(res), flush=True)


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hs", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--store", required=True)
    p.add_argument("--device-name", default="nio-test")
    p.add_argument("command")
    p.add_argument("args", nargs="*")
    p.add_argument("--invite", action="append")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--name")
    p.add_argument("--wait", type=float, default=0)
    p.add_argument("--expect")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    a = p.parse_args()
    c = None
    code = 0
    try:
        c = await open_client(a)
        if a.command == "serve":
            await serve(c)
            return 0
        args = {"invite": a.invite, "plain": a.plain, "name": a.name, "wait": a.wait, "expect": a.expect,
                "count": a.count, "limit": a.limit}
        pos = {"join": ["room"], "send": ["room", "text"], "read": ["room"]}.get(a.command, [])
        if len(a.args) != len(pos):
            raise Fail(f"{a.command} takes {' '.join(pos) or 'no arguments'}")
        args.update(zip(pos, a.args))
        res = await cmd(c, a.command, args)
        if "error" in res:
            code = 1
    except Fail as e:
        res, code = {"error": str(e)}, 1
    finally:
        if c is not None:
            await c.close()
    print(json.dumps(res))
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
