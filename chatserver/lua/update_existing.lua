-- Set fields of a hash only if the hash exists (an UPDATE, never an INSERT).
--
-- KEYS[1]  the hash
-- ARGV     field/value pairs
--
-- Returns 1 when written, 0 when there is no such hash.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
