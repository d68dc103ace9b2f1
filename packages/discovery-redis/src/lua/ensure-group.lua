-- ensure-group.lua: store the group settings of the service, each field only if absent.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] shard count (digits), [3] lease TTL ms (digits),
--        [4] '1' to replace a stored field that is not a positive integer, else '0'
-- Reply: {shardCount, leaseTtlMs, repaired} where shardCount and leaseTtlMs are
--        the stored values as bulk strings (nil when absent; may differ from
--        ARGV and may be garbage unless replaced) and repaired is a flat
--        {field, old value, ...} of the fields this call replaced
--
-- Each field is written with HSETNX semantics, so a group stored by an older
-- version (shardCount only) gains leaseTtlMs. The check of a garbage field and
-- its replacement happen in this one script, so they cannot race another writer.
--
-- A new group also records its creation time (server TIME, ms) as 'createdAt',
-- which snapshots report as the group's age: Redis cannot tell a new service
-- from one whose data it lost, so the worker waits one TTL after creation.

reap()
local replace = ARGV[4] == '1'
local repaired = {}

-- Store `value` in `field` unless a valid value is there; true when it was absent.
local function ensure(field, value)
  local stored = redis.call('HGET', K_META, field)
  if not stored then
    redis.call('HSET', K_META, field, value)
    DIRTY = true
    return true
  end
  if replace and not is_positive_integer(stored) then
    redis.call('HSET', K_META, field, value)
    repaired[#repaired + 1] = field
    repaired[#repaired + 1] = stored
    DIRTY = true
  end
  return false
end

if ensure('shardCount', ARGV[2]) then redis.call('HSET', K_META, 'createdAt', digits(NOW_MS)) end
ensure('leaseTtlMs', ARGV[3])
commit()
local stored = redis.call('HMGET', K_META, 'shardCount', 'leaseTtlMs')
return { stored[1], stored[2], repaired }
