-- progress.lua: the owner of a running job stores its progress.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] partition, [5] token, [6] id, [7] progress JSON
-- Reply: {'OK', epoch, 1 stored or 0 not running here}; {'STALE'}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token, id = ARGV[4], ARGV[5], ARGV[6]
if not fenced(p, token) then return { 'STALE' } end
if redis.call('HEXISTS', pk(p, 'run'), id) == 0 then return { 'OK', epoch, 0 } end
redis.call('HSET', K_PROG, id, ARGV[7])
return { 'OK', epoch, 1 }
