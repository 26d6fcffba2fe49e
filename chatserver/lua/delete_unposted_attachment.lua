-- Delete an attachment that was never posted (the unposted-upload sweep).
--
-- KEYS[1]  attachment:<id>
-- KEYS[2]  unposted-attachments (zset)
-- ARGV[1]  the attachment id
-- ARGV[2]  the counters key up to the site id (``<prefix>counters:``)
-- ARGV[3]  the counters key after the site id (``:attachment-bytes``)
--
-- Returns the deleted hash's fields, or an empty list when the attachment is
-- bound or gone (nothing changes then, apart from a stale index entry).

local fields = redis.call("HGETALL", KEYS[1])
if #fields == 0 or redis.call("HEXISTS", KEYS[1], "conv_id") == 1 then
  redis.call("ZREM", KEYS[2], ARGV[1])
  return {}
end
local site = redis.call("HGET", KEYS[1], "site_id")
local size = -tonumber(redis.call("HGET", KEYS[1], "size"))
redis.call("DEL", KEYS[1])
if redis.call("ZREM", KEYS[2], ARGV[1]) == 1 then
  local counters = ARGV[2] .. site .. ARGV[3]
  redis.call("HINCRBY", counters, "unposted_bytes", size)
  redis.call("HINCRBY", counters, "total_bytes", size)
end
return fields
