-- v2: OMEMO device state
-- Rows are scoped by account (the UserLogin ID). The identity private key is
-- the one thing that must never be lost: without it every contact sees a new
-- device and old sessions die.
CREATE TABLE omemo_identity (
	account               TEXT   NOT NULL PRIMARY KEY,
	device_id             BIGINT NOT NULL,
	private_key           bytea  NOT NULL,
	next_prekey_id        BIGINT NOT NULL,
	next_signed_prekey_id BIGINT NOT NULL
);

CREATE TABLE omemo_prekey (
	account     TEXT   NOT NULL,
	id          BIGINT NOT NULL,
	private_key bytea  NOT NULL,
	public_key  bytea  NOT NULL,
	PRIMARY KEY (account, id)
);

CREATE TABLE omemo_signed_prekey (
	account       TEXT   NOT NULL,
	id            BIGINT NOT NULL,
	private_key   bytea  NOT NULL,
	public_key    bytea  NOT NULL,
	signature_v03 bytea  NOT NULL,
	signature_v2  bytea  NOT NULL,
	created       BIGINT NOT NULL,
	PRIMARY KEY (account, id)
);

CREATE TABLE omemo_session (
	account   TEXT     NOT NULL,
	version   SMALLINT NOT NULL,
	jid       TEXT     NOT NULL,
	device_id BIGINT   NOT NULL,
	record    bytea    NOT NULL,
	PRIMARY KEY (account, version, jid, device_id)
);

CREATE TABLE omemo_device_list (
	account TEXT     NOT NULL,
	version SMALLINT NOT NULL,
	jid     TEXT     NOT NULL,
	devices TEXT     NOT NULL,
	PRIMARY KEY (account, version, jid)
);

CREATE TABLE omemo_trust (
	account      TEXT     NOT NULL,
	jid          TEXT     NOT NULL,
	device_id    BIGINT   NOT NULL,
	identity_key bytea    NOT NULL,
	trust        SMALLINT NOT NULL,
	PRIMARY KEY (account, jid, device_id, identity_key)
);
