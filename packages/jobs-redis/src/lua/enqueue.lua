-- enqueue.lua: store a batch of jobs (perform, performAt, performIn, performMany).
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions (see common.lua), [4] n, [5] how long (ms)
--        to remember this call, then n groups of 8: id, handler, partition, runAt (ms),
--        unique key or '', ordered 0/1, key or '', record JSON
-- Reply: {'OK', epoch, {r1, …, rn}}: ri is '' when stored, else the id of the
--        queued-or-running job that holds its unique key (nothing stored)
--        or a status reply of common.lua
--
-- Partitions whose owner found nothing to do get one wake-up message.
--
-- A call is remembered (by its first job's id, with its results) for ARGV[5]
-- ms: a caller that lost the reply and sends it again gets the same results
-- instead of a second copy of jobs that may have run and completed meanwhile.

local epoch, status = check_queue()
if status then return status end
local n = tonumber(ARGV[4])
local memo = B .. 'call:' .. ARGV[6]
local prior = redis.call('GET', memo)
if prior then return { 'OK', epoch, cjson.decode(prior) } end
local items, woke = {}, {}
for j = 0, n - 1 do items[#items + 1] = job_at(6 + j * 8) end
local results = enqueue_batch(items, woke)
for p in pairs(woke) do wake(p) end
redis.call('SET', memo, cjson.encode(results), 'PX', ARGV[5])
return { 'OK', epoch, results }
