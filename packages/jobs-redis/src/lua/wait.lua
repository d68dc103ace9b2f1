-- wait.lua: a process waits for job id: its channel is told when the job
-- finishes (see notify in common.lua), unless it has finished already.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] id, [5] channel, [6] ms to keep the wait
-- Reply: {'OK', epoch, 'waiting'}, {'OK', epoch, 'unknown'}, {'OK', epoch, 'finished', message JSON
--        as a waiter's channel gets it}, {'OK', epoch, 'kept', the job's `fin` value}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local id = ARGV[4]
local fin = redis.call('HGET', K_FIN, id)
if fin then return { 'OK', epoch, 'kept', fin } end
if redis.call('HEXISTS', K_JOBS, id) == 0 then return { 'OK', epoch, 'unknown' } end
if redis.call('ZSCORE', K_DEAD, id) then
  return { 'OK', epoch, 'finished', '{"id":' .. cjson.encode(id) .. ',"s":"dead","e":' .. raw(redis.call('HGET', K_ERR, id)) .. '}' }
end
redis.call('SADD', K_WAITS, id)
redis.call('SADD', B .. 'wait:' .. id, ARGV[5])
redis.call('PEXPIRE', B .. 'wait:' .. id, ARGV[6])
return { 'OK', epoch, 'waiting' }
