-- delete-dead.lua: delete one dead job, or the oldest `limit` of them.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] id or '' (all), [5] limit
-- Reply: {'OK', epoch, deleted (-1: no such dead job), left in the dead set} or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local ids = dead_targets()
if ids == nil then return { 'OK', epoch, -1, redis.call('ZCARD', K_DEAD) } end
for _, id in ipairs(ids) do
  local meta = meta_of(id)
  redis.call('ZREM', K_DEAD, id)
  count('dead', meta and meta.h or '?', -1)
  redis.call('HDEL', K_JOBS, id)
  redis.call('HDEL', K_META, id)
  redis.call('HDEL', K_FAILS, id)
  redis.call('HDEL', K_ERR, id)
  redis.call('HDEL', K_PROG, id)
end
return { 'OK', epoch, #ids, redis.call('ZCARD', K_DEAD) }
