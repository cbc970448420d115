-- v3: OMEMO inbox
-- One row per decrypted OMEMO message, written in the same transaction as
-- the ratchet step that decrypted it, so a message is never decrypted twice
-- and never lost between decryption and bridging: body holds the plaintext
-- only until bridgev2 has stored the message, then it is cleared. Rows are
-- kept a while after that so redelivered stanzas (archive catch-up, offline
-- storage) are recognised without touching the ratchet.
CREATE TABLE omemo_inbox (
	account    TEXT     NOT NULL,
	message_id TEXT     NOT NULL,
	peer       TEXT     NOT NULL,
	from_me    BOOLEAN  NOT NULL,
	-- 0 text, 1 empty (key transport, heartbeat), 2 failed (body is the notice)
	kind       SMALLINT NOT NULL,
	body       TEXT,
	xmpp_id    TEXT     NOT NULL,
	replace_id TEXT     NOT NULL,
	version    SMALLINT NOT NULL,
	device_id  BIGINT   NOT NULL,
	trusted    BOOLEAN  NOT NULL,
	timestamp  BIGINT   NOT NULL,
	received   BIGINT   NOT NULL,
	PRIMARY KEY (account, message_id)
);
CREATE INDEX omemo_inbox_pending_idx ON omemo_inbox (account, received);
