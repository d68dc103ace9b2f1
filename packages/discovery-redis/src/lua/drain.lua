-- drain.lua: mark a live member as draining (it is stopping and hands its shards over).
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id
-- Reply: 1 when the member is live (marked now or before), 0 when it is gone
--
-- The record gets ',"draining":true' before its final '}' and is announced as
-- member:put. Draining twice changes nothing and announces nothing. The lease
-- is not renewed.

reap()
local id = ARGV[2]
if not is_live(id) then
  commit()
  return 0
end
local record = redis.call('HGET', K_INFO, id)
-- A lease without a readable record is not a listed member: nothing to mark.
if record and string.sub(record, -1) == '}' and not string.find(record, '"draining":true', 1, true) then
  record = string.sub(record, 1, -2) .. ',"draining":true}'
  redis.call('HSET', K_INFO, id, record)
  member_put(id, record)
end
commit()
return 1
