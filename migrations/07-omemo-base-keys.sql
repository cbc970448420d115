-- v7: base keys of OMEMO key exchanges that started sessions
-- Kept per sender device for the lifetime of the signed prekey they used,
-- also after the session is deleted, so that a 0.3 key exchange without a
-- one-time prekey cannot be replayed to start a session again.
CREATE TABLE omemo_base_key (
	account   TEXT     NOT NULL,
	version   SMALLINT NOT NULL,
	jid       TEXT     NOT NULL,
	device_id BIGINT   NOT NULL,
	base_key  bytea    NOT NULL,
	seen_at   BIGINT   NOT NULL,
	PRIMARY KEY (account, version, jid, device_id, base_key)
);
CREATE INDEX omemo_base_key_seen_idx ON omemo_base_key (account, seen_at);
