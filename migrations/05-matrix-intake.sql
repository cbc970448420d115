-- v5: Matrix intake
-- Every timeline event of an appservice transaction is written here before
-- the transaction is answered, so an event the homeserver handed over
-- survives a crash. Rows are drained into bridgev2 in seq order per room.
-- state: 0 stored, 1 sending to XMPP (xmpp_id chosen), 2 sent to XMPP,
-- 3 done (bridgev2 handled it). Done rows keep only their id for a while,
-- so that a transaction the homeserver sends again is not bridged twice.
CREATE TABLE matrix_intake (
	event_id   TEXT     NOT NULL PRIMARY KEY,
	room_id    TEXT     NOT NULL,
	seq        BIGINT   NOT NULL,
	event_json TEXT,
	state      SMALLINT NOT NULL,
	xmpp_id    TEXT     NOT NULL,
	received   BIGINT   NOT NULL
);
CREATE INDEX matrix_intake_room_idx ON matrix_intake (room_id, seq);
CREATE INDEX matrix_intake_state_idx ON matrix_intake (state, seq);
