-- unregister.lua: revoke a member's lease; its record and claims go with it.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id
-- Reply: 1 when the member was live, 0 when it was already gone (idempotent)
--
-- Announced as member:removed (which implies its claims).

reap()
local id = ARGV[2]
local live = is_live(id)
if live then
  remove_member(id)
  drop_orphan_claims()
else
  redis.call('HDEL', K_INFO, id) -- a record without a lease is not a member: nothing to announce
end
commit()
return live and 1 or 0
