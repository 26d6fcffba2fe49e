-- Replace an agent's password hash if it is still the one the caller read.
--
-- KEYS[1]  agent:<id>
-- ARGV[1]  the hash read (the old one)
-- ARGV[2]  the new hash
--
-- Returns 1 when replaced; 0 when the hash changed meanwhile or there is no
-- such agent (nothing is written then).

if redis.call("HGET", KEYS[1], "password_hash") ~= ARGV[1] then
  return 0
end
redis.call("HSET", KEYS[1], "password_hash", ARGV[2])
return 1
