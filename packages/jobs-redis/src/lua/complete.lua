-- complete.lua: attempts that succeeded: delete the jobs, release their holds.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] n, then n job ids
-- Reply: {'OK', epoch, {r1, …}}: ri is 1 when recorded (now, or by an earlier call
--        whose reply was lost: the record is gone while the token is still current,
--        and only the current owner can delete it), 0 when the job was not running
--        here any more (put back); {'STALE'} when the token
--        is not the partition's (a zombie: nothing is recorded); or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token = ARGV[4], ARGV[5]
if not fenced(p, token) then return { 'STALE' } end
local results = {}
for j = 1, tonumber(ARGV[6]) do
  local id = ARGV[6 + j]
  local running = redis.call('HGET', pk(p, 'run'), id)
  if not running then
    results[j] = redis.call('HEXISTS', K_JOBS, id) == 0 and 1 or 0
  else
    local h = string.match(running, '^(.*)|%d+$') or running
    left_running(p, id, h)
    release_holds(p, id, meta_of(id))
    redis.call('HDEL', K_JOBS, id)
    redis.call('HDEL', K_META, id)
    redis.call('HDEL', K_FAILS, id)
    redis.call('HDEL', K_ERR, id)
    results[j] = 1
  end
end
return { 'OK', epoch, results }
