-- v8: index of the Matrix intake's pending rows
-- The drain's "next event of this room" (WHERE room_id=? AND state<3 ORDER BY
-- seq LIMIT 1) walked the room's done rows, which are kept for a while, in
-- seq order before reaching a pending one: its cost grew with the room's
-- recent traffic (a third of the bridge's CPU in a 2000-message burst). The
-- partial index holds only pending rows, so the look-up is one probe.
CREATE INDEX matrix_intake_pending_idx ON matrix_intake (room_id, seq) WHERE state<3;
