-- retry.lua: an attempt failed and will run again after a delay. An ordered job
-- keeps the head of its key's line meanwhile.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] id,
--        [7] delay ms, [8] error JSON
-- Reply: {'OK', epoch, due time ms, fails} or {'OK', epoch, -1} when the job was
--        not running here; {'STALE'}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token, id = ARGV[4], ARGV[5], ARGV[6]
if not fenced(p, token) then return { 'STALE' } end
local running = redis.call('HGET', pk(p, 'run'), id)
if not running then
  -- Recorded already by a call whose reply was lost: it waits in the due set.
  local due = redis.call('ZSCORE', pk(p, 'due'), id)
  if due then return { 'OK', epoch, due, redis.call('HGET', K_FAILS, id) or '1' } end
  return { 'OK', epoch, -1 }
end
local reason = cancel_of(id)
if reason then
  end_cancelled(p, id, running, reason)
  return { 'OK', epoch, -1 }
end
local h = left_running(p, id, running)
ensure_meta(p, id, h)
local fails = redis.call('HINCRBY', K_FAILS, id, 1)
redis.call('HSET', K_ERR, id, ARGV[8])
local due = NOW + tonumber(ARGV[7])
redis.call('ZADD', pk(p, 'due'), digits(due), id)
count('retrying', h, 1)
tally('f', 1)
return { 'OK', epoch, digits(due), fails }
