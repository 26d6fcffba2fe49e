-- The visitor's open (queued or active) conversation, or a new queued one.
--
-- KEYS[1]  open:<visitor>           -> id of the visitor's open conversation
-- KEYS[2]  conv:<new id>            the hash of the conversation to create
-- KEYS[3]  visitor-convs:<visitor>  zset of the visitor's conversations by created_at
-- KEYS[4]  convs:queued:<site>      zset of the site's queued conversations by queued_at
-- ARGV[1]  key prefix of conversation hashes ("<prefix>conv:")
-- ARGV[2]  the new conversation's id
-- ARGV[3]  its created_at (= queued_at), a decimal string
-- ARGV[4..] its field/value pairs
--
-- Returns {0, fields} for the open conversation, {1, fields} for a new one.
-- One script, so two concurrent calls for one visitor never create two.

local current = redis.call("GET", KEYS[1])
if current then
  local key = ARGV[1] .. current
  local state = redis.call("HGET", key, "state")
  if state and state ~= "closed" then
    return {0, redis.call("HGETALL", key)}
  end
end

redis.call("HSET", KEYS[2], unpack(ARGV, 4))
redis.call("SET", KEYS[1], ARGV[2])
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[2])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[2])
return {1, redis.call("HGETALL", KEYS[2])}
