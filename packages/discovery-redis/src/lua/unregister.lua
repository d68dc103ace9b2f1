-- unregister.lua: revoke a member's lease; its info and claims go with it.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id
-- Reply: 1 when the member was live, 0 when it was already gone (idempotent)

local reaped = reap()
local id = ARGV[2]
local removed = redis.call('ZREM', K_MEMBERS, id)
redis.call('HDEL', K_INFO, id)
if removed == 1 then drop_orphan_claims() end
if reaped or removed == 1 then changed() end
return removed
