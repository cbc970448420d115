#!/usr/bin/python3
"""Publish an empty legacy OMEMO device list (eu.siacs.conversations.axolotl.devicelist, access
model open) for an account, over STARTTLS without certificate checks (test Prosody only).

Profanity 0.13.1 never creates its device-list node on a fresh account, so it never publishes its
device: profanity-peer.sh runs this first.

  seed_devicelist.py JID PASSWORD HOST PORT
"""
import ssl
import sys

import slixmpp
from slixmpp.xmlstream import ET


class Seeder(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0060")
        self.register_plugin("xep_0004")
        self.ok = False
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", lambda _: self.disconnect())

    async def start(self, _):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
        form.add_field(var="pubsub#access_model", value="open")
        payload = ET.Element("{eu.siacs.conversations.axolotl}list")
        await self["xep_0060"].publish(None, "eu.siacs.conversations.axolotl.devicelist", id="current",
                                       payload=payload, options=form)
        self.ok = True
        print("seeded legacy OMEMO device list for", self.boundjid.bare)
        self.disconnect()


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    jid, password, host, port = sys.argv[1:]
    c = Seeder(jid, password)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.ssl_context = ctx
    c.connect((host, int(port)))
    c.loop.call_later(20, c.disconnect)  # give up on a server that does not answer
    c.process(forever=False)
    if not c.ok:
        sys.exit(f"failed to seed the device list of {jid}")


if __name__ == "__main__":
    main()
