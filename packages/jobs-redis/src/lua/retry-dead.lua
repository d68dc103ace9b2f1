-- retry-dead.lua: dead jobs back to ready with a fresh set of attempts, one id or
-- the oldest `limit` of them. A job whose unique key another job holds now stays dead.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] id or '' (all), [5] limit
-- Reply: {'OK', epoch, moved, left in the dead set} or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local ids = dead_targets()
if ids == nil then return { 'OK', epoch, -1, redis.call('ZCARD', K_DEAD) } end
local moved, woke = 0, {}
for _, id in ipairs(ids) do
  local meta = meta_of(id)
  local holder = meta and meta.u ~= '' and redis.call('HGET', K_UNIQUE, meta.u)
  if meta and not (holder and holder ~= id and redis.call('HEXISTS', K_JOBS, holder) == 1) then
    if meta.u ~= '' then redis.call('HSET', K_UNIQUE, meta.u, id) end
    redis.call('ZREM', K_DEAD, id)
    redis.call('HDEL', K_FAILS, id)
    count('dead', meta.h, -1)
    make_ready(meta.p, id, meta.h, meta.k, prio_of(meta))
    woke[meta.p] = true
    moved = moved + 1
  end
end
for p in pairs(woke) do wake(p) end
return { 'OK', epoch, moved, redis.call('ZCARD', K_DEAD) }
