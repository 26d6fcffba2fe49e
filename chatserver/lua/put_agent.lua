-- Create or overwrite an agent, keeping emails unique (case-insensitive).
--
-- KEYS[1]  agent:<id>
-- KEYS[2]  agent-email:<email key>  -> agent id (the unique index of emails)
-- KEYS[3]  "create": agents:<site>, the site's agent ids;
--          "save": session-gen:<id>, the agent's session generation
-- ARGV[1]  "create" or "save"
-- ARGV[2]  the agent id
-- ARGV[3]  key prefix of the email index ("<prefix>agent-email:")
-- ARGV[4]  the email key: the email stripped and lower-cased
-- ARGV[5..] field/value pairs to write (with "email_key" = ARGV[4])
--
-- Returns "ok", "taken" (the email belongs to another agent) or "missing"
-- (no agent to save).  Nothing is written unless "ok".  A save that takes
-- the agent's chat rights away (disabled, or role "analyst", where it had
-- neither) also raises the session generation: every sign-in ends.

local owner = redis.call("GET", KEYS[2])
if owner and owner ~= ARGV[2] then
  return "taken"
end

if ARGV[1] == "create" then
  redis.call("SET", KEYS[2], ARGV[2])
  redis.call("HSET", KEYS[1], unpack(ARGV, 5))
  redis.call("SADD", KEYS[3], ARGV[2])
  return "ok"
end

if redis.call("EXISTS", KEYS[1]) == 0 then
  return "missing"
end
local function chats(fields)  -- role, disabled
  return fields[1] ~= "analyst" and fields[2] ~= "1"
end
local before = redis.call("HMGET", KEYS[1], "role", "disabled")
local old = redis.call("HGET", KEYS[1], "email_key")
if old ~= ARGV[4] then
  if old and redis.call("GET", ARGV[3] .. old) == ARGV[2] then
    redis.call("DEL", ARGV[3] .. old)
  end
  redis.call("SET", KEYS[2], ARGV[2])
end
redis.call("HSET", KEYS[1], unpack(ARGV, 5))
if chats(before) and not chats(redis.call("HMGET", KEYS[1], "role", "disabled")) then
  redis.call("INCR", KEYS[3])
end
return "ok"
