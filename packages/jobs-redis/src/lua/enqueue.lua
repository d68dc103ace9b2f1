-- enqueue.lua: store a batch of jobs (perform, performAt, performIn, performMany).
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions (see common.lua), [4] n, [5] how long (ms)
--        to remember this call, [6] how long (ms) to remember a caller-chosen id,
--        [7] the call's nonce (the same for every try of one call), then n groups of 8: id, handler, partition, runAt (ms), unique key or '',
--        flags ('o' ordered, 'g' caller-chosen id), key or '', record JSON
-- Reply: {'OK', epoch, {r1, …, rn}}: ri is '' when stored, else the id of the
--        queued-or-running job that holds its unique key, or the job's own id when
--        its caller-chosen id is known (nothing stored); or a status reply of common.lua
--
-- Partitions whose owner found nothing to do get one wake-up message.
--
-- A call is remembered (by its nonce, with its results) for ARGV[5] ms: an
-- adapter that lost the reply and sends the call again gets the same results
-- instead of a second copy of jobs that may have run and completed meanwhile.
-- (A caller's own second perform with a chosen id is a new call: the id says
-- it is a duplicate.)

local epoch, status = check_queue()
if status then return status end
local n = tonumber(ARGV[4])
local memo = B .. 'call:' .. ARGV[7]
local prior = redis.call('GET', memo)
if prior then return { 'OK', epoch, cjson.decode(prior) } end
local items, woke = {}, {}
for j = 0, n - 1 do items[#items + 1] = job_at(8 + j * 8) end
local results = enqueue_batch(items, woke, tonumber(ARGV[6]))
for p in pairs(woke) do wake(p) end
redis.call('SET', memo, cjson.encode(results), 'PX', ARGV[5])
return { 'OK', epoch, results }
