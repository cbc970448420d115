#!/usr/bin/python3
"""Self-test of peer.py: two peer processes talk to each other through the
JSON-line protocol only, for OMEMO 0.3 and 2. Run: /usr/bin/python3 selftest.py
The Go test TestInteropPyPeerSelfTest runs it too."""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class Proc:
    def __init__(self, name: str) -> None:
        self.name = name
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "peer.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.n = 0

    def call(self, cmd: str, **kw):
        self.n += 1
        kw.update(cmd=cmd, id=self.n)
        self.p.stdin.write(json.dumps(kw) + "\n")
        self.p.stdin.flush()
        resp = json.loads(self.p.stdout.readline())
        assert resp.get("id") == self.n, resp
        if "error" in resp:
            raise RuntimeError(f"{self.name} {cmd}: {resp['error']}")
        return resp

    def fails(self, cmd: str, **kw) -> str:
        try:
            self.call(cmd, **kw)
        except RuntimeError as e:
            return str(e)
        raise AssertionError(f"{self.name} {cmd} unexpectedly succeeded")

    def close(self) -> None:
        self.call("quit")
        assert self.p.wait(timeout=10) == 0


def introduce(a: Proc, a_jid: str, b: Proc, version: str) -> None:
    """Give b what PEP would show it of a: a's device list and bundle."""
    info = a.call("bundle", version=version)
    b.call("set_devices", jid=a_jid, version=version, xml=info["device_list"])
    b.call("set_bundle", jid=a_jid, version=version, device_id=info["device_id"], xml=info["bundle"])


def run(version: str) -> None:
    alice, bob = Proc("alice"), Proc("bob")
    try:
        a = alice.call("create", jid="alice@example.org", versions=[version])
        b = bob.call("create", jid="bob@example.org", versions=[version], device_id=4242)
        assert b["device_id"] == 4242, b
        introduce(alice, "alice@example.org", bob, version)
        introduce(bob, "bob@example.org", alice, version)

        # Alice starts the session from Bob's bundle.
        m1 = alice.call("encrypt", to="bob@example.org", version=version, plaintext="hello bob")
        assert "prekey='true'" in m1["xml"] or 'prekey="true"' in m1["xml"] or 'kex="true"' in m1["xml"], m1["xml"]
        d1 = bob.call("decrypt", xml=m1["xml"], **{"from": "alice@example.org"})
        assert d1["body"] == "hello bob" and d1["device_id"] == a["device_id"], d1
        if version == "2":
            assert d1["envelope"]["from"] == "alice@example.org" and d1["envelope"]["rpad"], d1
        # The library answers a key exchange with an automatic empty message.
        out = bob.call("outbox")["messages"]
        assert len(out) == 1 and out[0]["to"] == "alice@example.org", out
        e = alice.call("decrypt", xml=out[0]["xml"], **{"from": "bob@example.org"})
        assert e["empty"], e
        # Replay of the first message is refused.
        bob.fails("decrypt", xml=m1["xml"], **{"from": "alice@example.org"})

        # Bob replies; Alice decrypts.
        r1 = bob.call("encrypt", to="alice@example.org", version=version, plaintext="hi alice")
        d = alice.call("decrypt", xml=r1["xml"], **{"from": "bob@example.org"})
        assert d["body"] == "hi alice", d

        # Held back and shuffled, across a ratchet step: each decrypts exactly once.
        held = [alice.call("encrypt", to="bob@example.org", version=version, plaintext=f"m{i}", hold=True)["held"]
                for i in range(6)]
        order = list(range(6))
        random.Random(7).shuffle(order)
        xmls = alice.call("release", ids=[held[i] for i in order])["xml"]
        for i, xml in zip(order, xmls):
            d = bob.call("decrypt", xml=xml, **{"from": "alice@example.org"})
            assert d["body"] == f"m{i}", (i, d)
        for xml in xmls:
            bob.fails("decrypt", xml=xml, **{"from": "alice@example.org"})

        # Empty message on demand (0.3 key transport).
        kt = bob.call("empty", to="alice@example.org", version=version)
        d = alice.call("decrypt", xml=kt["xml"], **{"from": "bob@example.org"})
        assert d["empty"] and d["key_material"] == kt["key_material"], (d, kt)

        # A message for nobody we know of.
        alice.fails("decrypt", xml=m1["xml"], **{"from": "alice@example.org"})
        print(f"selftest {version}: ok")
    finally:
        for p in (alice, bob):
            try:
                p.close()
            except Exception:  # pylint: disable=broad-except
                p.p.kill()


if __name__ == "__main__":
    for v in sys.argv[1:] or ["0.3", "2"]:
        run(v)
