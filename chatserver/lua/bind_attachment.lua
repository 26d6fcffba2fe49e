-- Bind an attachment to the conversation it is first posted into.
--
-- KEYS[1]  attachment:<id>
-- KEYS[2]  unposted-attachments (zset)
-- ARGV[1]  the conversation id
-- ARGV[2]  the attachment id
-- ARGV[3]  the counters key up to the site id (``<prefix>counters:``)
-- ARGV[4]  the counters key after the site id (``:attachment-bytes``)
--
-- Returns the attachment's fields (conv_id kept when it was set already),
-- or an empty list when there is no such attachment.  A first binding takes
-- the file out of the unposted index and its bytes out of the site's
-- unposted count.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return {}
end
if redis.call("HSETNX", KEYS[1], "conv_id", ARGV[1]) == 1 then
  if redis.call("ZREM", KEYS[2], ARGV[2]) == 1 then
    local site = redis.call("HGET", KEYS[1], "site_id")
    local size = redis.call("HGET", KEYS[1], "size")
    redis.call("HINCRBY", ARGV[3] .. site .. ARGV[4], "unposted_bytes", -tonumber(size))
  end
end
return redis.call("HGETALL", KEYS[1])
