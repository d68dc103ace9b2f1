-- common.lua: helpers prepended to every script of this directory; never run on its own.
--
-- Every key of a queue starts with B = '<prefix>{<queue>}:' (one hash tag per
-- queue, so each script touches one slot and runs on Redis Cluster):
--   B..'jobs'    HASH  id -> job record JSON (immutable once enqueued)
--   B..'meta'    HASH  id -> '{"h":handler,"p":partition,"k":ordered key or "","u":unique key or ""}',
--                       and "r":priority for a job given one, only for jobs that need it: unique,
--                       ordered, delayed, retrying, dead or given a priority (a plain job is found
--                       by its list and its running entry; this saves memory)
--   B..'fails'   HASH  id -> failed attempts (absent = 0)
--   B..'err'     HASH  id -> JSON of the last error
--   B..'unique'  HASH  unique key -> id of the queued-or-running job holding it
--   B..'dead'    ZSET  id -> time of death (ms)
--   B..'paused'  SET   paused handler names, and '*' while the whole queue is paused
--   B..'conc'    HASH  handler -> attempts running, cluster-wide (maxConcurrency)
--   B..'cw:'..h  SET   partitions whose fetch found handler h at its maxConcurrency
--   B..'seen'    SET   handler names ever enqueued
--   B..'ordered' SET   handler names that consumers registered as ordered
--   B..'fence'   HASH  partition -> fencing token of its current owner
--   B..'count'   HASH  '<state>:<handler>' -> number of jobs (ready, scheduled, retrying, running, dead)
--   B..'cron'    HASH  periodic name -> newest tick enqueued (ms)
--   B..'info'    HASH  'epoch' -> marker of this incarnation of the data, 'partitions' -> P
--   B..'p'..p..':r:'..h     LIST  ready jobs of handler h in partition p
--   B..'p'..p..':r:'..h..'|'..r  LIST  ready jobs of handler h given priority r in `perform`
--   B..'p'..p..':prio'      SET   'h|r' of the lists above that may hold jobs (fetch drops empty ones)
--   B..'p'..p..':due'       ZSET  id -> due time (ms): scheduled and retrying jobs
--   B..'p'..p..':run'       HASH  id -> '<handler>|<start ms>|<flags>' for running jobs; flags:
--                                 'c' counted in B..'conc' (maxConcurrency), 'h' holds a unique key or a line
--   B..'p'..p..':busy'      HASH  ordered key -> id of the job at the head of its line
--   B..'p'..p..':line:'..k  LIST  ordered jobs of key k waiting behind the head
--   B..'p'..p..':idle'      STRING set when a fetch found nothing: the next enqueue publishes a wake-up
--   B..'prog'    HASH  id -> JSON of the last progress of a queued or running job
--   B..'cxl'     HASH  id -> JSON of the cancel of a running job (its reason): whatever its attempt
--                       comes to, the job ends cancelled
--   B..'fin'     HASH  id -> JSON of a kept finished job: {s: 'completed'|'cancelled', at: finished ms,
--                       p: partition, f: fails, st: started ms, r: result JSON, pr: progress JSON, e: error JSON};
--                       its record stays in B..'jobs' until it is trimmed
--   B..'done:completed', B..'done:cancelled'  ZSET  id -> finished ms: the kept jobs, per the
--                       retention the caller sends (see below)
--   B..'waits'   SET   ids some process waits for (waitFor)
--   B..'tp:'..m  HASH  'c' -> attempts completed, 'f' -> attempts failed in minute m (ms / 60000);
--                       expires after two hours (throughput)
--   B..'wait:'..id  SET  channels of the processes that wait for job id (expires)
-- Channel B..'wake': messages are a partition number, '*' for all, or 'c:'..id: the
-- running job id was cancelled (its owner aborts the attempt).
-- A waiter's channel gets {id, s: state, r: result JSON, e: error JSON} when the job finishes.
--
-- KEYS[1] is B..'jobs' (it routes the call on Cluster). ARGV[1] = B,
-- ARGV[2] = the epoch the caller knows ('' for none), ARGV[3] = the caller's
-- partition count and retention of finished jobs: 'P|count|ageMs' (count 0
-- keeps none); a script's own arguments start at ARGV[4].
-- Every reply starts with a status: 'OK' (then the epoch), 'LOST' (the data
-- was lost: the epoch marker is gone or different), 'PARTS' (then the stored
-- partition count, which differs from the caller's), 'STALE' (a fencing
-- token that is not the partition's current one), 'REPAIRED' (then key, type
-- pairs of bookkeeping keys that held another type and were deleted: nothing
-- else was done, call again) or 'GARBAGE' (then the key of job data that holds
-- another type, and that type: nothing was done).
--
-- Time comes from the server's TIME only: client clocks are never compared.

if redis.replicate_commands then redis.replicate_commands() end

local B = ARGV[1]
local K_JOBS, K_META, K_FAILS, K_ERR = B .. 'jobs', B .. 'meta', B .. 'fails', B .. 'err'
local K_UNIQUE, K_DEAD, K_PAUSED, K_CONC = B .. 'unique', B .. 'dead', B .. 'paused', B .. 'conc'
local K_SEEN, K_ORDERED, K_FENCE, K_COUNT = B .. 'seen', B .. 'ordered', B .. 'fence', B .. 'count'
local K_CRON, K_INFO = B .. 'cron', B .. 'info'
local K_PROG, K_CXL, K_FIN, K_WAITS = B .. 'prog', B .. 'cxl', B .. 'fin', B .. 'waits'
local CHANNEL = B .. 'wake'
local PARTS, KEEP_COUNT, KEEP_AGE = string.match(ARGV[3], '^(%d+)|(%d+)|(%d+)$')
PARTS = PARTS or ARGV[3]
KEEP_COUNT, KEEP_AGE = tonumber(KEEP_COUNT or '0'), tonumber(KEEP_AGE or '0')

local TIME = redis.call('TIME')
local NOW = tonumber(TIME[1]) * 1000 + math.floor(tonumber(TIME[2]) / 1000)

-- Integers as plain digits: tostring() would print 1.7e+15 for large numbers.
local function digits(n)
  return string.format('%.0f', n)
end

local function pk(p, name)
  return B .. 'p' .. p .. ':' .. name
end

local function count(state, handler, by)
  redis.call('HINCRBY', K_COUNT, state .. ':' .. handler, by)
end

-- The queue-wide keys and their types. Garbage of another type in one (written
-- by hand or by another program) would make a script fail half-way, after some
-- of its writes: it is found before any write. The bookkeeping keys are
-- repaired (deleted: they are rebuilt, and the caller reports what was lost);
-- the keys that hold the jobs themselves are not, and the caller names them.
local BOOKKEEPING = {
  { K_INFO, 'hash' }, { K_COUNT, 'hash' }, { K_SEEN, 'set' }, { K_ORDERED, 'set' },
  { K_PAUSED, 'set' }, { K_CONC, 'hash' }, { K_FENCE, 'hash' }, { K_CRON, 'hash' },
  { K_UNIQUE, 'hash' }, { K_PROG, 'hash' }, { K_WAITS, 'set' },
}
local JOB_DATA = {
  { K_JOBS, 'hash' }, { K_META, 'hash' }, { K_FAILS, 'hash' }, { K_ERR, 'hash' }, { K_DEAD, 'zset' },
  { K_CXL, 'hash' }, { K_FIN, 'hash' }, { B .. 'done:completed', 'zset' }, { B .. 'done:cancelled', 'zset' },
}

-- Returns nil, or a status reply: {'REPAIRED', key, type, …} (deleted; call again)
-- or {'GARBAGE', key, type} (a key of job data holds another type).
local function check_types()
  for _, kt in ipairs(JOB_DATA) do
    local t = redis.call('TYPE', kt[1]).ok
    if t ~= 'none' and t ~= kt[2] then return { 'GARBAGE', kt[1], t } end
  end
  local repaired = nil
  for _, kt in ipairs(BOOKKEEPING) do
    local t = redis.call('TYPE', kt[1]).ok
    if t ~= 'none' and t ~= kt[2] then
      redis.call('DEL', kt[1])
      repaired = repaired or { 'REPAIRED' }
      repaired[#repaired + 1] = kt[1]
      repaired[#repaired + 1] = t
    end
  end
  return repaired
end

-- Check the epoch and partition count; create them for a new queue.
-- Returns the epoch, or a status reply table to return at once.
local function check_queue()
  local garbage = check_types()
  if garbage then return nil, garbage end
  local want, parts = ARGV[2], PARTS
  local info = redis.call('HMGET', K_INFO, 'epoch', 'partitions')
  local epoch, stored = info[1], info[2]
  if not epoch then
    if want ~= '' then return nil, { 'LOST' } end
    epoch = TIME[1] .. string.rep('0', 6 - #TIME[2]) .. TIME[2]
    redis.call('HSET', K_INFO, 'epoch', epoch)
  elseif want ~= '' and epoch ~= want then
    return nil, { 'LOST' }
  end
  if not stored then
    redis.call('HSET', K_INFO, 'partitions', parts)
  elseif stored ~= parts then
    return nil, { 'PARTS', stored }
  end
  return epoch, nil
end

local function fenced(p, token)
  return redis.call('HGET', K_FENCE, p) == token
end

local function meta_of(id)
  local raw = redis.call('HGET', K_META, id)
  if not raw then return nil end
  local ok, meta = pcall(cjson.decode, raw)
  if not ok or type(meta) ~= 'table' or type(meta.h) ~= 'string' then return nil end
  return meta
end

-- The partitions job `meta` may be in: its own, or every one for a job without
-- a meta record (a plain job, placed in a random partition).
local function partitions_of(meta)
  if meta and meta.p then return { meta.p } end
  local parts = {}
  for q = 0, tonumber(PARTS) - 1 do parts[#parts + 1] = q end
  return parts
end

local function wake(p)
  if redis.call('DEL', pk(p, 'idle')) == 1 then redis.call('PUBLISH', CHANNEL, p) end
end

-- The priority a job was given in `perform` ('' for none: its handler's), from its meta.
local function prio_of(meta)
  if meta and type(meta.r) == 'number' then return digits(meta.r) end
  return ''
end

-- The ready list of handler h at priority r ('' = the handler's own) in partition p.
local function ready_list(p, h, r)
  if r == '' then return pk(p, 'r:' .. h) end
  return pk(p, 'r:' .. h .. '|' .. r)
end

-- Push ids to the back (or the front) of a ready list; a priority's list is
-- registered for fetch.
local function push_ready(p, h, r, ids, front)
  if r ~= '' then redis.call('SADD', pk(p, 'prio'), h .. '|' .. r) end
  redis.call(front and 'LPUSH' or 'RPUSH', ready_list(p, h, r), unpack(ids))
end

-- A job became due: behind the ready jobs of its handler (at its priority), or
-- behind the line of its ordered key.
local function make_ready(p, id, h, okey, r)
  count('ready', h, 1)
  if okey ~= '' then
    local head = redis.call('HGET', pk(p, 'busy'), okey)
    if head and head ~= id then
      redis.call('RPUSH', pk(p, 'line:' .. okey), id)
      return
    end
    redis.call('HSET', pk(p, 'busy'), okey, id)
  end
  push_ready(p, h, r, { id })
end

-- Handler and flags of a value of a partition's run hash.
local function parse_run(value)
  local h, flags = string.match(value, '^([^|]*)|%d+|(%a*)$')
  if h == nil then return value, '' end
  return h, flags
end

-- Add `by` to a handler's concurrency count; when slots free up, wake the
-- partitions whose fetch found the handler at its limit.
local function conc_add(h, by)
  if redis.call('HINCRBY', K_CONC, h, by) < 0 then redis.call('HSET', K_CONC, h, 0) end
  if by < 0 then
    local waiting = redis.call('SMEMBERS', B .. 'cw:' .. h)
    if #waiting > 0 then
      redis.call('DEL', B .. 'cw:' .. h)
      for _, q in ipairs(waiting) do redis.call('PUBLISH', CHANNEL, q) end
    end
  end
end

-- One fewer running attempt (its run value given): returns the handler and flags.
local function left_running(p, id, value)
  local h, flags = parse_run(value)
  redis.call('HDEL', pk(p, 'run'), id)
  count('running', h, -1)
  if string.find(flags, 'c', 1, true) then conc_add(h, -1) end
  return h, flags
end

-- A plain job gets its meta record when it starts to need one (a retry, the dead set).
local function ensure_meta(p, id, h)
  redis.call('HSETNX', K_META, id, cjson.encode({ h = h, p = tonumber(p), k = '', u = '' }))
end

-- A running job goes back to the front of its ready list (aborted, or left by
-- an earlier owner); an ordered job keeps the head of its line. Returns the handler.
local function put_back(p, id, value)
  local h = left_running(p, id, value)
  count('ready', h, 1)
  push_ready(p, h, prio_of(meta_of(id)), { id }, true)
  return h
end

-- The dead jobs an admin call acts on: ARGV[4] names one ('' for all, the
-- oldest ARGV[5] of them). Returns nil when the named job is not dead.
local function dead_targets()
  if ARGV[4] ~= '' then
    if redis.call('ZSCORE', K_DEAD, ARGV[4]) == false then return nil end
    return { ARGV[4] }
  end
  return redis.call('ZRANGE', K_DEAD, 0, tonumber(ARGV[5]) - 1)
end

-- The job completed or died: release its unique key; the next job of its ordered key may run.
local function release_holds(p, id, meta)
  if meta == nil then return end
  if meta.u ~= nil and meta.u ~= '' and redis.call('HGET', K_UNIQUE, meta.u) == id then
    redis.call('HDEL', K_UNIQUE, meta.u)
  end
  if meta.k ~= nil and meta.k ~= '' and redis.call('HGET', pk(p, 'busy'), meta.k) == id then
    local nxt = redis.call('LPOP', pk(p, 'line:' .. meta.k))
    if nxt then
      redis.call('HSET', pk(p, 'busy'), meta.k, nxt)
      local m = meta_of(nxt)
      -- To the front: it waited longest.
      push_ready(p, m and m.h or '?', prio_of(m), { nxt }, true)
      wake(p)
    else
      redis.call('HDEL', pk(p, 'busy'), meta.k)
    end
  end
end

-- Whether a meta record names a unique key or an ordered key (without decoding it).
local function has_holds(raw)
  return raw ~= false and raw ~= nil
    and not (string.find(raw, '"k":""', 1, true) and string.find(raw, '"u":""', 1, true))
end

-- Store jobs: `items` is a list of {id, h, p, run_at, uk, flags, key, json};
-- flags: 'o' ordered, 'g' an id the caller chose, 'r' and digits: the priority given. Returns the results ('' stored,
-- else the id of the unique key's holder, or the job's own id when a caller-chosen
-- id is known: stored now, or given within the last `given_ms` ms) and marks
-- partitions to wake in `woke`. Plain jobs are stored with one command per
-- structure for the whole batch; unique, ordered and given-id ones need their own.
local function enqueue_batch(items, woke, given_ms)
  local results = {}
  local jobs, metas, seen, ready, due, tally = {}, {}, {}, {}, {}, {}
  -- Unique keys taken by this batch: their records are written only at the end.
  local taken = {}
  local function tal(state, h) tally[state .. ':' .. h] = (tally[state .. ':' .. h] or 0) + 1 end
  for n, it in ipairs(items) do
    local holder = nil
    local mark = nil
    if string.find(it.flags, 'g', 1, true) then
      mark = B .. 'given:' .. it.id
      if redis.call('HEXISTS', K_JOBS, it.id) == 1 or redis.call('EXISTS', mark) == 1 then holder = it.id end
    end
    if holder == nil and it.uk ~= '' then
      local current = taken[it.uk] or redis.call('HGET', K_UNIQUE, it.uk)
      if taken[it.uk] or (current and redis.call('HEXISTS', K_JOBS, current) == 1 and redis.call('ZSCORE', K_DEAD, current) == false) then
        holder = current
      else
        redis.call('HSET', K_UNIQUE, it.uk, it.id)
        taken[it.uk] = it.id
      end
    end
    if holder then
      results[n] = holder
    else
      results[n] = ''
      if mark and given_ms > 0 then redis.call('SET', mark, '1', 'PX', given_ms) end
      local okey = ''
      if it.key ~= '' and (string.find(it.flags, 'o', 1, true) or redis.call('SISMEMBER', K_ORDERED, it.h) == 1) then
        okey = it.key
      end
      jobs[#jobs + 1] = it.id
      jobs[#jobs + 1] = it.json
      local r = string.match(it.flags, 'r(%d+)') or ''
      if okey ~= '' or it.uk ~= '' or it.run_at > NOW or r ~= '' then
        metas[#metas + 1] = it.id
        metas[#metas + 1] = cjson.encode({ h = it.h, p = tonumber(it.p), k = okey, u = it.uk, r = tonumber(r) })
      end
      seen[it.h] = true
      if it.run_at > NOW then
        local list = due[it.p]
        if list == nil then
          list = {}
          due[it.p] = list
        end
        list[#list + 1] = digits(it.run_at)
        list[#list + 1] = it.id
        tal('scheduled', it.h)
      elseif okey ~= '' then
        make_ready(it.p, it.id, it.h, okey, r)
        woke[it.p] = true
      else
        local key = it.p .. '|' .. it.h .. '|' .. r
        local list = ready[key]
        if list == nil then
          list = { p = it.p, h = it.h, r = r }
          ready[key] = list
        end
        list[#list + 1] = it.id
        tal('ready', it.h)
        woke[it.p] = true
      end
    end
  end
  if #jobs > 0 then redis.call('HSET', K_JOBS, unpack(jobs)) end
  if #metas > 0 then redis.call('HSET', K_META, unpack(metas)) end
  for h in pairs(seen) do redis.call('SADD', K_SEEN, h) end
  for _, list in pairs(ready) do push_ready(list.p, list.h, list.r, list) end
  for p, list in pairs(due) do
    local first = redis.call('ZRANGE', pk(p, 'due'), 0, 0, 'WITHSCORES')
    redis.call('ZADD', pk(p, 'due'), unpack(list))
    local soonest = math.huge
    for i = 1, #list, 2 do soonest = math.min(soonest, tonumber(list[i])) end
    if #first == 0 or tonumber(first[2]) > soonest then woke[p] = true end
  end
  for field, n in pairs(tally) do redis.call('HINCRBY', K_COUNT, field, n) end
  return results
end

-- The 8 job fields of ARGV from index i, as enqueue_batch takes them.
local function job_at(i)
  return {
    id = ARGV[i], h = ARGV[i + 1], p = ARGV[i + 2], run_at = tonumber(ARGV[i + 3]),
    uk = ARGV[i + 4], flags = ARGV[i + 5], key = ARGV[i + 6], json = ARGV[i + 7],
  }
end

-- Drop the kept jobs of `state` past the count, and those older than the age.
-- The count is trimmed once it is a tenth over (amortised: one trim per several
-- calls when the count is large); the age on every call, at most 1,000 jobs at
-- a time. A trimmed job's record goes with it.
local function trim_kept(state)
  local key = B .. 'done:' .. state
  local over = redis.call('ZCARD', key) - KEEP_COUNT
  local old = {}
  if over > math.floor(KEEP_COUNT / 10) then
    -- Taken off the set as they are read: id, score, id, score, …
    local popped = redis.call('ZPOPMIN', key, over)
    for i = 1, #popped, 2 do old[#old + 1] = popped[i] end
  end
  local aged = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. digits(NOW - KEEP_AGE), 'LIMIT', 0, 1000)
  if #aged > 0 then redis.call('ZREM', key, unpack(aged)) end
  for _, id in ipairs(aged) do old[#old + 1] = id end
  if #old > 0 then
    redis.call('HDEL', K_FIN, unpack(old))
    redis.call('HDEL', K_JOBS, unpack(old))
  end
end

-- JSON text or 'null'.
local function raw(json)
  if json then return json end
  return 'null'
end

-- Answer the processes that wait for the jobs `ids` finished with `states[i]`
-- (and `results[i]`, `errors[i]`: JSON text or false). One EXISTS when nobody
-- waits, one SMISMEMBER when somebody does. The message is built as text: user
-- JSON is never decoded and encoded again (cjson would round numbers).
local function notify(ids, states, results, errors)
  if #ids == 0 or redis.call('EXISTS', K_WAITS) == 0 then return end
  local waited = redis.call('SMISMEMBER', K_WAITS, unpack(ids))
  for i, id in ipairs(ids) do
    if waited[i] == 1 then
      redis.call('SREM', K_WAITS, id)
      local key = B .. 'wait:' .. id
      local channels = redis.call('SMEMBERS', key)
      redis.call('DEL', key)
      if #channels > 0 then
        local message = '{"id":' .. cjson.encode(id) .. ',"s":"' .. states[i] .. '","r":' .. raw(results[i])
          .. ',"e":' .. raw(errors[i]) .. '}'
        for _, channel in ipairs(channels) do redis.call('PUBLISH', channel, message) end
      end
    end
  end
end

-- The state of a kept job's `fin` value (it starts with it).
local function kept_state(fin)
  return string.match(fin, '^{"s":"(%a+)"') or 'completed'
end

-- Jobs that finished for good (completed or cancelled; their holds already
-- released, their run entries gone): keep them per the retention (their record
-- stays in B..'jobs', the rest goes to B..'fin', built as text around the stored
-- JSON: nothing is decoded) or drop them, and answer their waiters. `results`
-- and `errors` are JSON text or false; `started` the start ms (digits) of their last
-- attempt or false; `fails` their failed attempts as the caller knows them (nil:
-- read from B..'fails'); `p` the partition they were in.
local function finish_jobs(ids, state, results, errors, started, fails, p)
  if #ids == 0 then return end
  if KEEP_COUNT > 0 then
    fails = fails or redis.call('HMGET', K_FAILS, unpack(ids))
    -- Most queues never report progress: no lookup then.
    local progress = {}
    if redis.call('EXISTS', K_PROG) == 1 then progress = redis.call('HMGET', K_PROG, unpack(ids)) end
    local kept, scores = {}, {}
    local now = digits(NOW)
    -- Built with as few concatenations as the fields allow (Lua's strings are
    -- the cost here): absent fields are left out.
    local head = '{"s":"' .. state .. '","at":' .. now .. ',"p":' .. (p or 'null') .. ',"f":'
    for i, id in ipairs(ids) do
      local v = head .. (fails[i] or '0') .. ',"st":' .. (started[i] or 'null')
      if results[i] then v = v .. ',"r":' .. results[i] end
      if progress[i] then v = v .. ',"pr":' .. progress[i] end
      if errors[i] then v = v .. ',"e":' .. errors[i] end
      kept[#kept + 1] = id
      kept[#kept + 1] = v .. '}'
      scores[#scores + 1] = now
      scores[#scores + 1] = id
    end
    redis.call('HSET', K_FIN, unpack(kept))
    redis.call('ZADD', B .. 'done:' .. state, unpack(scores))
    trim_kept(state)
  else
    redis.call('HDEL', K_JOBS, unpack(ids))
  end
  redis.call('HDEL', K_META, unpack(ids))
  redis.call('HDEL', K_FAILS, unpack(ids))
  redis.call('HDEL', K_ERR, unpack(ids))
  if redis.call('EXISTS', K_PROG) == 1 then redis.call('HDEL', K_PROG, unpack(ids)) end
  local states = {}
  for i = 1, #ids do states[i] = state end
  notify(ids, states, results, errors)
end

-- The cancel of running job `id`, if one came (JSON of its error), else nil.
local function cancel_of(id)
  local c = redis.call('HGET', K_CXL, id)
  if c then return c end
  return nil
end

-- A job whose running attempt was cancelled ends now: out of the run hash, holds
-- released, kept as cancelled. `value` is its run entry.
local function end_cancelled(p, id, value, reason)
  local _, start = string.match(value, '^([^|]*)|(%d+)|')
  left_running(p, id, value)
  release_holds(p, id, meta_of(id))
  redis.call('HDEL', K_CXL, id)
  finish_jobs({ id }, 'cancelled', { false }, { reason }, { start or false }, nil, p)
end

-- A running job goes back to the front of its ready list (see put_back), unless
-- it was cancelled: then it ends cancelled. Returns whether it was put back.
local function release_running(p, id, value)
  local reason = cancel_of(id)
  if reason then
    end_cancelled(p, id, value, reason)
    return false
  end
  put_back(p, id, value)
  return true
end

-- Count `n` completed ('c') or failed ('f') attempts in this minute's throughput bucket.
local function tally(field, n)
  if n == 0 then return end
  local key = B .. 'tp:' .. digits(math.floor(NOW / 60000))
  redis.call('HINCRBY', key, field, n)
  redis.call('PEXPIRE', key, 7200000)
end
