-- v0 -> v1: Bridge tables
-- Placeholder so that later upgrades have a base; bridgev2's own tables hold
-- logins, portals, ghosts and messages.
SELECT 1;
