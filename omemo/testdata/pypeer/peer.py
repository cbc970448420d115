#!/usr/bin/python3
"""An OMEMO peer built on Syndace's reference stack (python-omemo with the
oldmemo and twomemo backends), driven over stdin/stdout with one JSON object
per line. The Go interop tests start it as a subprocess; it does no
networking: every XMPP interaction (bundle and device list download/upload,
sending automatic empty messages) is answered from, or handed back to, the
driver, always as the XML real clients exchange.

Request:  {"cmd": "<name>", "id": <any, echoed>, ...arguments}
Response: {"id": ..., "ok": true, ...results} or {"id": ..., "error": "...", "type": "<exception class>"}

Versions are named "0.3" (eu.siacs.conversations.axolotl) or "2" (urn:xmpp:omemo:2).
Binary values are base64; XML values are strings.

Commands:
  create      {jid, device_id?, versions?=["0.3","2"], trust?="blind"|"manual"}
              -> {device_id, identity_key (Ed25519), fingerprint (Curve25519 hex)}
  bundle      {version} -> {device_id, bundle (xml), device_list (xml), node}
  set_devices {jid, version, xml | ids}           feed a device list (PEP item payload)
  set_bundle  {jid, version, device_id, xml}      make a bundle downloadable
  encrypt     {to: jid | [jid], version, plaintext, envelope?, style?, raw_b64?, hold?, iv_len? (0.3)}
              -> {xml, key_material, sce?} (0.3: plaintext is the body; 2: wrapped in an XEP-0420
              envelope unless envelope (verbatim XML) or raw_b64 (verbatim bytes) is given).
              With hold=true the xml is kept back and only {held: n} returned.
  encrypt_many {to, version, n, prefix?} -> {xml: [...]}   bodies prefix+"0" .. prefix+str(n-1)
  release     {ids: [n, ...]} -> {xml: [...]}     held messages, in the order asked
  empty       {to: jid, device_id?, version} -> {xml}   key transport / empty message
  decrypt     {xml, from} -> {plaintext?, plaintext_b64?, empty, device_id, key_material,
              body?, envelope?: {from, to, rpad, content}}
  outbox      {} -> {messages: [{to, version, xml}]}  automatic empty messages the library sent
  replace_sessions {jid, device_id?}             new sessions, announced by empty messages in the outbox
  devices     {jid} -> {devices: [{device_id, identity_key, trust, namespaces}]}
  trust       {jid, identity_key | device_id, level: trusted|blind|undecided|distrusted}
  session     {jid, device_id, version} -> {exists, sending_chain_length, receiving_chain_length}
  ping        {} -> {}
  quit        {} -> {} and exit
"""

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import sys
import traceback
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

import omemo
import omemo.session_manager
from omemo.session import Initiation
import oldmemo
import oldmemo.etree
import twomemo
import twomemo.etree

NS_OLD = oldmemo.oldmemo.NAMESPACE
NS_TWO = twomemo.twomemo.NAMESPACE
NS_SCE = "urn:xmpp:sce:1"
NS_CLIENT = "jabber:client"

VERSIONS = {
    "0.3": NS_OLD, "oldmemo": NS_OLD, NS_OLD: NS_OLD,
    "2": NS_TWO, "twomemo": NS_TWO, NS_TWO: NS_TWO,
}
ETREE = {NS_OLD: oldmemo.etree, NS_TWO: twomemo.etree}

# Custom trust level names, evaluated by _evaluate_custom_trust_level.
TRUST_LEVELS = {
    "trusted": omemo.TrustLevel.TRUSTED,
    "verified": omemo.TrustLevel.TRUSTED,
    "blind": omemo.TrustLevel.TRUSTED,
    "undecided": omemo.TrustLevel.UNDECIDED,
    "distrusted": omemo.TrustLevel.DISTRUSTED,
}


class PeerError(Exception):
    pass


def namespace_of(version: Any) -> str:
    try:
        return VERSIONS[str(version)]
    except KeyError:
        raise PeerError(f"unknown OMEMO version {version!r}") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_xml(element: ET.Element, namespace: str = "") -> str:
    """Serialise in default-namespace form (xmlns='...' where the namespace changes), as
    clients put it on the wire; ElementTree's default_namespace refuses unqualified attributes."""
    del namespace  # the root always declares its own
    return _to_xml(element, None)


def _to_xml(element: ET.Element, parent_ns: Optional[str]) -> str:
    tag = element.tag
    ns = ""
    if tag.startswith("{"):
        ns, tag = tag[1:].split("}", 1)
    attrs = ""
    if ns != parent_ns:
        attrs += f" xmlns={quoteattr(ns)}"
    for key, value in element.attrib.items():
        if key.startswith("{"):
            raise PeerError(f"namespaced attribute {key} not supported")
        attrs += f" {key}={quoteattr(value)}"
    inner = escape(element.text or "") + "".join(_to_xml(child, ns) + escape(child.tail or "") for child in element)
    if not inner:
        return f"<{tag}{attrs}/>"
    return f"<{tag}{attrs}>{inner}</{tag}>"


class MemoryStorage(omemo.Storage):
    def __init__(self) -> None:
        super().__init__(disable_cache=True)
        self.data: Dict[str, Any] = {}

    async def _load(self, key: str) -> omemo.Maybe[omemo.JSONType]:
        if key in self.data:
            return omemo.Just(json.loads(self.data[key]))
        return omemo.Nothing()

    async def _store(self, key: str, value: omemo.JSONType) -> None:
        self.data[key] = json.dumps(value)

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


class World:
    """What the peer's XMPP account sees of PEP: own and foreign device lists and bundles."""

    def __init__(self, own_jid: str) -> None:
        self.own_jid = own_jid
        self.device_lists: Dict[Tuple[str, str], Dict[int, Optional[str]]] = {}
        self.bundles: Dict[Tuple[str, str, int], omemo.Bundle] = {}
        self.own_bundles: Dict[str, omemo.Bundle] = {}
        self.outbox: List[Dict[str, Any]] = []
        self.trust_policy = "blind"


def make_session_manager_class(world: World) -> type:
    class PeerSessionManager(omemo.SessionManager):
        async def _upload_bundle(self, bundle: omemo.Bundle) -> None:
            world.own_bundles[bundle.namespace] = bundle

        async def _download_bundle(self, namespace: str, bare_jid: str, device_id: int) -> omemo.Bundle:
            if bare_jid == world.own_jid and namespace in world.own_bundles \
                    and world.own_bundles[namespace].device_id == device_id:
                return world.own_bundles[namespace]
            try:
                return world.bundles[(namespace, bare_jid, device_id)]
            except KeyError:
                raise omemo.BundleNotFound(f"no bundle for {bare_jid}/{device_id} in {namespace}") from None

        async def _delete_bundle(self, namespace: str, device_id: int) -> None:
            world.own_bundles.pop(namespace, None)

        async def _upload_device_list(self, namespace: str, device_list: Dict[int, Optional[str]]) -> None:
            world.device_lists[(namespace, world.own_jid)] = dict(device_list)

        async def _download_device_list(self, namespace: str, bare_jid: str) -> Dict[int, Optional[str]]:
            return dict(world.device_lists.get((namespace, bare_jid), {}))

        async def _evaluate_custom_trust_level(self, device: omemo.DeviceInformation) -> omemo.TrustLevel:
            try:
                return TRUST_LEVELS[device.trust_level_name]
            except KeyError:
                raise omemo.UnknownTrustLevel(device.trust_level_name) from None

        async def _make_trust_decision(
            self, undecided: FrozenSet[omemo.DeviceInformation], identifier: Optional[str]
        ) -> None:
            if world.trust_policy != "blind":
                return  # manual: leave undecided, encrypt raises StillUndecided
            for device in undecided:
                await self.set_trust(device.bare_jid, device.identity_key, "blind")

        async def _send_message(self, message: omemo.Message, bare_jid: str) -> None:
            world.outbox.append({
                "to": bare_jid,
                "version": "0.3" if message.namespace == NS_OLD else "2",
                "xml": to_xml(ETREE[message.namespace].serialize_message(message), message.namespace),
            })

    return PeerSessionManager


@contextlib.contextmanager
def fixed_device_id(device_id: Optional[int]):
    """python-omemo draws the device id from secrets.randbelow; pin it when the driver asks."""
    if device_id is None:
        yield
        return
    mod = omemo.session_manager
    original = mod.secrets

    class Fixed:
        @staticmethod
        def randbelow(n: int) -> int:
            return device_id - mod.SessionManager.DEVICE_ID_MIN

    mod.secrets = Fixed  # type: ignore[assignment]
    try:
        yield
    finally:
        mod.secrets = original


@contextlib.contextmanager
def iv_length(n: Optional[int]):
    """oldmemo always draws a 12-byte GCM IV; older clients (Conversations before 2.x,
    Profanity) send 16. Let the driver ask for that."""
    if n is None:
        yield
        return
    mod = oldmemo.oldmemo
    original = mod.secrets

    class IV:
        @staticmethod
        def token_bytes(k: int) -> bytes:
            return original.token_bytes(int(n) if k == 12 else k)

    mod.secrets = IV  # type: ignore[assignment]
    try:
        yield
    finally:
        mod.secrets = original


def sce_envelope(body: str, own_jid: str, to: List[str], style: str = "") -> bytes:
    """style: "" writes default namespaces where they change (as clients put it on the wire);
    "etree" is ElementTree's own serialiser (ns0:/ns1: prefixes, declared on the root);
    "etree-pretty" adds indentation; "affix" adds affix elements of another namespace and an
    unknown SCE affix."""
    env = ET.Element(f"{{{NS_SCE}}}envelope")
    if style == "affix":
        ET.SubElement(ET.SubElement(env, f"{{{NS_SCE}}}future-affix"), "{urn:example:x}x").text = "?"
    content = ET.SubElement(env, f"{{{NS_SCE}}}content")
    ET.SubElement(content, f"{{{NS_CLIENT}}}body").text = body
    ET.SubElement(env, f"{{{NS_SCE}}}rpad").text = b64(secrets.token_bytes(secrets.randbelow(16) + 1))
    if style == "affix":
        ET.SubElement(env, "{urn:example:affix}nonce").text = "1"
    if len(to) == 1:
        ET.SubElement(env, f"{{{NS_SCE}}}to", attrib={"jid": to[0]})
    ET.SubElement(env, f"{{{NS_SCE}}}from", attrib={"jid": own_jid})
    if style in ("etree", "etree-pretty"):
        if style == "etree-pretty":
            ET.indent(env, space="  ")
        return ET.tostring(env, encoding="utf-8", xml_declaration=(style == "etree-pretty"))
    if style not in ("", "affix"):
        raise PeerError(f"unknown envelope style {style!r}")
    return to_xml(env).encode("utf-8")


def parse_envelope(data: bytes) -> Dict[str, Any]:
    env = ET.fromstring(data)
    if env.tag != f"{{{NS_SCE}}}envelope":
        raise PeerError(f"OMEMO 2 plaintext is not an SCE envelope: {env.tag}")
    out: Dict[str, Any] = {"rpad": env.find(f"{{{NS_SCE}}}rpad") is not None}
    frm = env.find(f"{{{NS_SCE}}}from")
    to = env.find(f"{{{NS_SCE}}}to")
    out["from"] = None if frm is None else frm.get("jid")
    out["to"] = None if to is None else to.get("jid")
    content = env.find(f"{{{NS_SCE}}}content")
    if content is None:
        raise PeerError("SCE envelope has no <content>")
    out["content"] = "".join(ET.tostring(child, encoding="unicode") for child in content)
    body = content.find(f"{{{NS_CLIENT}}}body")
    if body is None:
        body = content.find("body")
    out["body"] = None if body is None else (body.text or "")
    return out


class Peer:
    def __init__(self) -> None:
        self.world: Optional[World] = None
        self.sm: Optional[omemo.SessionManager] = None
        self.backends: Dict[str, omemo.Backend] = {}
        self.held: Dict[int, str] = {}
        self.next_held = 1

    def need(self) -> Tuple[World, omemo.SessionManager]:
        if self.world is None or self.sm is None:
            raise PeerError("create first")
        return self.world, self.sm

    async def cmd_ping(self, req: Dict[str, Any]) -> Dict[str, Any]:
        return {}

    async def cmd_create(self, req: Dict[str, Any]) -> Dict[str, Any]:
        if self.sm is not None:
            raise PeerError("already created")
        jid = req["jid"]
        world = World(jid)
        world.trust_policy = req.get("trust", "blind")
        storage = MemoryStorage()
        namespaces = [namespace_of(v) for v in req.get("versions", ["2", "0.3"])]
        backends: List[omemo.Backend] = []
        for ns in namespaces:
            backend = oldmemo.Oldmemo(storage) if ns == NS_OLD else twomemo.Twomemo(storage)
            backends.append(backend)
            self.backends[ns] = backend
        cls = make_session_manager_class(world)
        with fixed_device_id(req.get("device_id")):
            sm = await cls.create(backends, storage, jid, None, "undecided")
        await sm.after_history_sync()
        self.world, self.sm = world, sm
        own, _ = await sm.get_own_device_information()
        return {
            "device_id": own.device_id,
            "identity_key": b64(own.identity_key),
            "fingerprint": "".join(sm.format_identity_key(own.identity_key)),
        }

    async def cmd_bundle(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, sm = self.need()
        ns = namespace_of(req["version"])
        bundle = world.own_bundles.get(ns)
        if bundle is None:
            raise PeerError(f"no bundle published for {ns}")
        etree = ETREE[ns]
        node = f"{NS_OLD}.bundles:{bundle.device_id}" if ns == NS_OLD else f"{NS_TWO}:bundles"
        return {
            "device_id": bundle.device_id,
            "bundle": to_xml(etree.serialize_bundle(bundle), ns),
            "device_list": to_xml(etree.serialize_device_list(world.device_lists.get((ns, world.own_jid), {})), ns),
            "node": node,
        }

    async def cmd_set_devices(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, sm = self.need()
        ns = namespace_of(req["version"])
        if "xml" in req:
            device_list = ETREE[ns].parse_device_list(ET.fromstring(req["xml"]))
        else:
            device_list = {int(i): None for i in req["ids"]}
        world.device_lists[(ns, req["jid"])] = device_list
        await sm.update_device_list(ns, req["jid"], device_list)
        return {"devices": sorted(device_list.keys())}

    async def cmd_set_bundle(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, sm = self.need()
        ns = namespace_of(req["version"])
        device_id = int(req["device_id"])
        bundle = ETREE[ns].parse_bundle(ET.fromstring(req["xml"]), req["jid"], device_id)
        world.bundles[(ns, req["jid"], device_id)] = bundle
        return {"identity_key": b64(bundle.identity_key)}

    async def cmd_encrypt(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, sm = self.need()
        ns = namespace_of(req["version"])
        to = req["to"] if isinstance(req["to"], list) else [req["to"]]
        sce = False
        if "raw_b64" in req:
            plaintext = base64.b64decode(req["raw_b64"])
        elif "envelope" in req:
            plaintext = req["envelope"].encode("utf-8")
        elif ns == NS_TWO:
            plaintext = sce_envelope(req["plaintext"], world.own_jid, to, req.get("style", ""))
            sce = True
        else:
            plaintext = req["plaintext"].encode("utf-8")
        with iv_length(req.get("iv_len")):
            messages, errors = await sm.encrypt(frozenset(to), {ns: plaintext}, [ns])
        if errors:
            raise PeerError(f"encryption errors: {[(e.bare_jid, e.device_id, repr(e.exception)) for e in errors]}")
        if len(messages) != 1:
            raise PeerError(f"expected one message, got {len(messages)}")
        message, key_material = next(iter(messages.items()))
        xml = to_xml(ETREE[ns].serialize_message(message), ns)
        out: Dict[str, Any] = {
            "key_material": b64(key_material.key + key_material.auth_tag),
            "recipients": sorted([k.bare_jid, k.device_id, kex is not None] for k, kex in message.keys),
            "sce": sce,
        }
        if sce:
            out["envelope"] = plaintext.decode("utf-8")
        if req.get("hold"):
            n = self.next_held
            self.next_held += 1
            self.held[n] = xml
            out["held"] = n
        else:
            out["xml"] = xml
        return out

    async def cmd_encrypt_many(self, req: Dict[str, Any]) -> Dict[str, Any]:
        """n messages "<prefix><i>" in one call (for long skips); plain bodies for 0.3,
        SCE envelopes for 2."""
        xmls = []
        for i in range(int(req["n"])):
            r = await self.cmd_encrypt({"to": req["to"], "version": req["version"],
                                        "plaintext": f"{req.get('prefix', '')}{i}"})
            xmls.append(r["xml"])
        return {"xml": xmls}

    async def cmd_release(self, req: Dict[str, Any]) -> Dict[str, Any]:
        xmls = []
        for n in req["ids"]:
            try:
                xmls.append(self.held.pop(int(n)))
            except KeyError:
                raise PeerError(f"no held message {n}") from None
        return {"xml": xmls}

    async def cmd_empty(self, req: Dict[str, Any]) -> Dict[str, Any]:
        """An empty OMEMO message (0.3 key transport / 2 empty message), built the way the
        library builds its automatic ones, for every (or one) device of one recipient."""
        world, sm = self.need()
        ns = namespace_of(req["version"])
        backend = self.backends.get(ns)
        if backend is None:
            raise PeerError(f"backend {ns} not loaded")
        jid = req["to"]
        want = req.get("device_id")
        devices = [d for d in await sm.get_device_information(jid)
                   if ns in d.namespaces and (want is None or d.device_id == int(want))]
        if not devices:
            raise PeerError(f"no {ns} devices for {jid}")
        content, plain = await backend.encrypt_empty()
        keys = set()
        sessions = []
        for device in devices:
            session = await backend.load_session(jid, device.device_id)
            if session is None:
                bundle = await sm._download_bundle(ns, jid, device.device_id)  # pylint: disable=protected-access
                session, encrypted = await backend.build_session_active(jid, device.device_id, bundle, plain)
            else:
                encrypted = await backend.encrypt_key_material(session, plain)
            keys.add((encrypted, session.key_exchange
                      if session.initiation is Initiation.ACTIVE and not session.confirmed else None))
            sessions.append(session)
        own, _ = await sm.get_own_device_information()
        message = omemo.Message(ns, world.own_jid, own.device_id, content, frozenset(keys))
        for session in sessions:
            await backend.store_session(session)
        return {
            "xml": to_xml(ETREE[ns].serialize_message(message), ns),
            "key_material": b64(plain.key + plain.auth_tag),
        }

    async def cmd_decrypt(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, sm = self.need()
        element = ET.fromstring(req["xml"])
        ns = element.tag[1:].split("}")[0] if element.tag.startswith("{") else ""
        if ns not in ETREE:
            raise PeerError(f"not an <encrypted> element of a known namespace: {element.tag}")
        if ns == NS_OLD:
            message = await oldmemo.etree.parse_message(element, req["from"], world.own_jid, sm)
        else:
            message = twomemo.etree.parse_message(element, req["from"])
        plaintext, device, key_material = await sm.decrypt(message)
        out: Dict[str, Any] = {
            "empty": plaintext is None,
            "device_id": device.device_id,
            "version": "0.3" if ns == NS_OLD else "2",
            "key_material": b64(key_material.key + key_material.auth_tag),
        }
        if plaintext is not None:
            out["plaintext_b64"] = b64(plaintext)
            try:
                out["plaintext"] = plaintext.decode("utf-8")
            except UnicodeDecodeError:
                pass
            if ns == NS_TWO and not req.get("raw"):
                env = parse_envelope(plaintext)
                out["envelope"] = env
                out["body"] = env["body"]
            else:
                out["body"] = out.get("plaintext")
        return out

    async def cmd_replace_sessions(self, req: Dict[str, Any]) -> Dict[str, Any]:
        """python-omemo's session healing: build a fresh session with every device of jid
        from its bundle and announce it with an empty key-exchange message (to the outbox)."""
        _, sm = self.need()
        failed = {}
        for device in await sm.get_device_information(req["jid"]):
            if "device_id" in req and device.device_id != int(req["device_id"]):
                continue
            for ns, e in (await sm.replace_sessions(device)).items():
                failed[f"{device.device_id}/{ns}"] = repr(e)
        if failed:
            raise PeerError(f"session replacement failed: {failed}")
        return {}

    async def cmd_outbox(self, req: Dict[str, Any]) -> Dict[str, Any]:
        world, _ = self.need()
        messages, world.outbox = world.outbox, []
        return {"messages": messages}

    async def cmd_devices(self, req: Dict[str, Any]) -> Dict[str, Any]:
        _, sm = self.need()
        devices = await sm.get_device_information(req["jid"])
        return {"devices": sorted(({
            "device_id": d.device_id,
            "identity_key": b64(d.identity_key),
            "trust": d.trust_level_name,
            "namespaces": sorted(d.namespaces),
        } for d in devices), key=lambda d: d["device_id"])}

    async def cmd_trust(self, req: Dict[str, Any]) -> Dict[str, Any]:
        _, sm = self.need()
        level = req["level"]
        if level not in TRUST_LEVELS:
            raise PeerError(f"unknown trust level {level!r}")
        if "identity_key" in req:
            identity_key = base64.b64decode(req["identity_key"])
        else:
            device = next((d for d in await sm.get_device_information(req["jid"])
                           if d.device_id == int(req["device_id"])), None)
            if device is None:
                raise PeerError(f"unknown device {req['jid']}/{req['device_id']}")
            identity_key = device.identity_key
        await sm.set_trust(req["jid"], identity_key, level)
        return {}

    async def cmd_session(self, req: Dict[str, Any]) -> Dict[str, Any]:
        self.need()
        backend = self.backends.get(namespace_of(req["version"]))
        if backend is None:
            raise PeerError("backend not loaded")
        session = await backend.load_session(req["jid"], int(req["device_id"]))
        if session is None:
            return {"exists": False}
        return {
            "exists": True,
            "initiation": session.initiation.name,
            "confirmed": session.confirmed,
            "sending_chain_length": session.sending_chain_length,
            "receiving_chain_length": session.receiving_chain_length,
        }


async def serve() -> None:
    peer = Peer()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        req: Dict[str, Any] = {}
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "quit":
                respond({"id": req.get("id"), "ok": True})
                return
            handler = getattr(peer, f"cmd_{cmd}", None)
            if handler is None:
                raise PeerError(f"unknown command {cmd!r}")
            result = await handler(req)
            result["ok"] = True
            result["id"] = req.get("id")
            respond(result)
        except Exception as e:  # pylint: disable=broad-except
            logging.getLogger("pypeer").debug("request failed", exc_info=True)
            if os.environ.get("PYPEER_TRACE"):
                traceback.print_exc(file=sys.stderr)
            respond({"id": req.get("id"), "error": f"{type(e).__name__}: {e}", "type": type(e).__name__})


def respond(obj: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get("PYPEER_DEBUG") else logging.ERROR,
        format="pypeer %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve())


if __name__ == "__main__":
    main()
