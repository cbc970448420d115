#!/usr/bin/python3
# Loopback stand-in for the homeserver calls bridgev2 makes while starting: /versions (spec
# versions from $VERSIONS), /whoami (the bot, $BOT_MXID), everything else {} -- but only with
# the right appservice token ($AS_TOKEN), as a real homeserver would. Listens on 127.0.0.1:$PORT.
# Used by scripts/firstrun-test.sh and scripts/docker-test.sh.
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSIONS = os.environ["VERSIONS"].split(",")
BOT = os.environ["BOT_MXID"]
TOKEN = os.environ["AS_TOKEN"]

class H(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path.startswith("/_matrix/client/versions"):
            return self.reply(200, {"versions": VERSIONS, "unstable_features": {}})
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "as_token rejected"})
        if "/account/whoami" in self.path:
            return self.reply(200, {"user_id": BOT})
        return self.reply(200, {})
    do_GET = do_POST = do_PUT = do_DELETE = handle_any

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
