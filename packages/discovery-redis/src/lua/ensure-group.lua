-- ensure-group.lua: store the shard count of the service unless one is stored.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] shard count (decimal)
-- Reply: the stored shard count as a bulk string (may differ from ARGV[2])

local reaped = reap()
local stored = redis.call('HSETNX', K_META, 'shardCount', ARGV[2])
if reaped or stored == 1 then changed() end
return redis.call('HGET', K_META, 'shardCount')
