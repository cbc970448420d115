-- Loaded by internal/testenv (ProsodyOptions.LogIQGets): one info line per IQ get a local
-- client sends, so that a test can count them with the server at info level, where the debug
-- log of every stanza is off. It only logs; the stanza goes on as before.
local function log_get(event)
	local stanza = event.stanza;
	if stanza.attr.type == "get" then
		module:log("info", "testenv iq-get to=%s", stanza.attr.to or "");
	end
end

module:hook("pre-iq/bare", log_get, 1000);
module:hook("pre-iq/full", log_get, 1000);
module:hook("pre-iq/host", log_get, 1000);
