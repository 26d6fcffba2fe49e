-- A site's identity secret, created on first use (or replaced on rotation).
--
-- KEYS[1]  site:<id>
-- ARGV[1]  a fresh secret
-- ARGV[2]  "1" to replace the current secret
--
-- Returns the secret, or false when there is no such site.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return false
end
local current = redis.call("HGET", KEYS[1], "identity_secret")
if ARGV[2] == "1" or not current or current == "" then
  redis.call("HSET", KEYS[1], "identity_secret", ARGV[1])
  return ARGV[1]
end
return current
