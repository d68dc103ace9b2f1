-- dead.lua: an attempt failed for the last time (maxFails, NonRetryableError, or
-- an unparsable record): into the dead set with its error; holds are released.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] id, [7] error JSON
-- Reply: {'OK', epoch, 1} recorded (now or by a call whose reply was lost), {'OK', epoch, 0} not running here,
--        {'OK', epoch, 2} cancelled while it ran (it ended cancelled); {'STALE'};
--        or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token, id = ARGV[4], ARGV[5], ARGV[6]
if not fenced(p, token) then return { 'STALE' } end
local running = redis.call('HGET', pk(p, 'run'), id)
-- Not running: recorded already by a call whose reply was lost (it is dead), or put back.
if not running then return { 'OK', epoch, redis.call('ZSCORE', K_DEAD, id) and 1 or 0 } end
local reason = cancel_of(id)
if reason then
  end_cancelled(p, id, running, reason)
  return { 'OK', epoch, 2 }
end
local h = left_running(p, id, running)
ensure_meta(p, id, h)
redis.call('HINCRBY', K_FAILS, id, 1)
redis.call('HSET', K_ERR, id, ARGV[7])
redis.call('ZADD', K_DEAD, digits(NOW), id)
count('dead', h, 1)
release_holds(p, id, meta_of(id))
notify({ id }, { 'dead' }, { false }, { ARGV[7] })
tally('f', 1)
return { 'OK', epoch, 1 }
