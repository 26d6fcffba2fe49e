-- Bind an attachment to the conversation it is first posted into.
--
-- KEYS[1]  attachment:<id>
-- ARGV[1]  the conversation id
--
-- Returns the attachment's fields (conv_id kept when it was set already),
-- or an empty list when there is no such attachment.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return {}
end
redis.call("HSETNX", KEYS[1], "conv_id", ARGV[1])
return redis.call("HGETALL", KEYS[1])
