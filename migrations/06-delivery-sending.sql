-- v6: XMPP -> Matrix sends in progress
-- A row is written just before bridgev2 sends a message from XMPP to Matrix
-- (when it converts it) and removed once bridgev2 stored the message. A
-- message converted again while its row exists may already be in the room
-- (the process died during the send, which Dendrite's transaction-id
-- dedup does not cover): the room is looked at before sending it again.
CREATE TABLE delivery_sending (
	account    TEXT   NOT NULL,
	message_id TEXT   NOT NULL,
	room_id    TEXT   NOT NULL,
	started    BIGINT NOT NULL,
	PRIMARY KEY (account, message_id)
);
