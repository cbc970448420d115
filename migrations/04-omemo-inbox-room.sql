-- v4: OMEMO inbox rows of group chats
-- For a message decrypted in a group chat, peer is the room and sender the
-- real bare JID of the occupant who sent it; empty for 1:1 chats. A row
-- decrypted before a crash is queued again to the room's portal, from
-- that occupant.
ALTER TABLE omemo_inbox ADD COLUMN sender TEXT NOT NULL DEFAULT '';
