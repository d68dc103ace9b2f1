-- cancel.lua: cancel one job. A waiting one (scheduled, ready, retrying) ends
-- cancelled at once, its holds released; a running one is marked (B..'cxl'),
-- and its owner is told on the wake channel ('c:' and {id, e: reason}) to abort the attempt:
-- whatever the attempt comes to, the scripts that record it end it cancelled.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] id, [5] error JSON (the reason),
--        [6] 'w': waiting jobs only (a running one is left alone: 'left')
-- Reply: {'OK', epoch, 'cancelled' | 'finished' | 'left' | 'unknown', state found} or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local id, reason = ARGV[4], ARGV[5]
local fin = redis.call('HGET', K_FIN, id)
if fin then return { 'OK', epoch, 'finished', kept_state(fin) } end
local rec = redis.call('HGET', K_JOBS, id)
if not rec then return { 'OK', epoch, 'unknown', '' } end
if redis.call('ZSCORE', K_DEAD, id) then return { 'OK', epoch, 'finished', 'dead' } end
if redis.call('HEXISTS', K_CXL, id) == 1 then return { 'OK', epoch, 'finished', 'cancelled' } end
local meta = meta_of(id)
local ok, record = pcall(cjson.decode, rec)
local h = (meta and meta.h) or (ok and type(record) == 'table' and record.handler) or '?'
local okey = (meta and meta.k) or ''
local parts = partitions_of(meta)
for _, q in ipairs(parts) do
  if redis.call('HEXISTS', pk(q, 'run'), id) == 1 then
    if ARGV[6] == 'w' then return { 'OK', epoch, 'left', 'running' } end
    redis.call('HSET', K_CXL, id, reason)
    redis.call('PUBLISH', CHANNEL, 'c:' .. cjson.encode({ id = id, e = reason }))
    return { 'OK', epoch, 'cancelled', 'running' }
  end
end
local state, at = nil, nil
for _, q in ipairs(parts) do
  if redis.call('ZREM', pk(q, 'due'), id) == 1 then
    state = redis.call('HEXISTS', K_FAILS, id) == 1 and 'retrying' or 'scheduled'
    at = q
    break
  end
  if redis.call('LREM', ready_list(q, h, prio_of(meta)), 1, id) == 1
    or (okey ~= '' and redis.call('LREM', pk(q, 'line:' .. okey), 1, id) == 1) then
    state, at = 'ready', q
    break
  end
end
if not state then return { 'OK', epoch, 'unknown', '' } end
count(state, h, -1)
release_holds(at, id, meta)
finish_jobs({ id }, 'cancelled', { false }, { reason }, { false }, nil, at)
return { 'OK', epoch, 'cancelled', state }
