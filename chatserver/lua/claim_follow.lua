-- Mark a trigger's firing as followed by a chat, once (store_redis.claim_follow).
--
-- KEYS[1]  firings:<visitor>   hash: trigger id -> "<visit> <at> <followed 0|1>"
-- ARGV     trigger id, the firing's ``at`` as recorded
-- Returns 1 the first time, 0 when already marked or the last firing is another.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local visit, at, followed = string.match(raw, '^(%S+) (%S+) (%S+)$')
if at ~= ARGV[2] or followed ~= '0' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], visit .. ' ' .. at .. ' 1')
return 1
