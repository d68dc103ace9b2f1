-- modify.lua: change a job that is not running yet: 'promote' (a scheduled or
-- retrying job becomes ready now; a ready one stays), 'reschedule' (a scheduled
-- or retrying job is due at another time), 'update' (the record of a scheduled,
-- ready or retrying job is replaced, if it is still the one the caller read).
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] id, [5] change,
--        [6] due ms (reschedule), [7] record read (update), [8] new record (update)
-- Reply: {'OK', epoch, 'done' | 'refused' | 'unknown' | 'changed', state found}: 'changed'
--        when the record is no longer the one read (read it again); or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local id, change = ARGV[4], ARGV[5]
local fin = redis.call('HGET', K_FIN, id)
if fin then return { 'OK', epoch, 'refused', kept_state(fin) } end
local rec = redis.call('HGET', K_JOBS, id)
if not rec then return { 'OK', epoch, 'unknown', '' } end
if redis.call('ZSCORE', K_DEAD, id) then return { 'OK', epoch, 'refused', 'dead' } end
local meta = meta_of(id)
local parts = partitions_of(meta)
local state, at = 'ready', nil
for _, q in ipairs(parts) do
  if redis.call('HEXISTS', pk(q, 'run'), id) == 1 then return { 'OK', epoch, 'refused', 'running' } end
  if redis.call('ZSCORE', pk(q, 'due'), id) then
    state, at = redis.call('HEXISTS', K_FAILS, id) == 1 and 'retrying' or 'scheduled', q
  end
end
if change == 'update' then
  if rec ~= ARGV[7] then return { 'OK', epoch, 'changed', state } end
  redis.call('HSET', K_JOBS, id, ARGV[8])
  return { 'OK', epoch, 'done', state }
end
if state == 'ready' then
  if change == 'promote' then return { 'OK', epoch, 'done', state } end
  return { 'OK', epoch, 'refused', state }
end
local h = meta and meta.h or '?'
if change == 'promote' then
  redis.call('ZREM', pk(at, 'due'), id)
  count(state, h, -1)
  make_ready(at, id, h, meta and meta.k or '', prio_of(meta))
  redis.call('PUBLISH', CHANNEL, at)
else
  redis.call('ZADD', pk(at, 'due'), digits(tonumber(ARGV[6])), id)
  -- The owner learns the new earliest due time from its next fetch.
  redis.call('PUBLISH', CHANNEL, at)
end
return { 'OK', epoch, 'done', state }
