-- Create a visitor hash unless it exists (idempotent creation with a given id).
--
-- KEYS[1]  visitor:<id>
-- ARGV     field/value pairs of the new row
--
-- Returns the row's fields: the existing ones, or the ones just written.

if redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("HSET", KEYS[1], unpack(ARGV))
end
return redis.call("HGETALL", KEYS[1])
