-- ensure-group.lua: store the shard count of the service unless one is stored.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] shard count (decimal)
-- Reply: the stored shard count as a bulk string (may differ from ARGV[2])
--
-- A new group also records its creation time (server TIME, ms) as 'createdAt',
-- which snapshots report as the group's age: Redis cannot tell a new service
-- from one whose data it lost, so the worker waits one TTL after creation.

local reaped = reap()
local stored = redis.call('HSETNX', K_META, 'shardCount', ARGV[2])
if stored == 1 then redis.call('HSET', K_META, 'createdAt', digits(NOW_MS)) end
if reaped or stored == 1 then changed() end
return redis.call('HGET', K_META, 'shardCount')
