-- release.lua: delete the claim of a shard if it is held by this owner with this token.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3] shard (decimal), [4] token (digits)
-- Reply: 1 when deleted, 0 when the claim is absent or held by another owner or token

local reaped = reap()
local released = 0
if redis.call('HGET', K_CLAIMS, ARGV[3]) == ARGV[2] .. '|' .. ARGV[4] then
  redis.call('HDEL', K_CLAIMS, ARGV[3])
  released = 1
end
if reaped or released == 1 then changed() end
return released
