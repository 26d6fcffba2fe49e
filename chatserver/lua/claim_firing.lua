-- Decide and record that a trigger fires for a visitor (store_redis.claim_firing).
--
-- KEYS[1]  firings:<visitor>   hash: trigger id -> "<visit> <at> <followed 0|1>"
-- ARGV     trigger id, visit, frequency (visit | visitor | always), gap, now
-- Returns 1 when the firing is recorded, 0 when the frequency forbids it.
-- ``at`` is kept as the caller's text so claim_follow can compare it exactly.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local visit, at = string.match(raw, '^(%S+) (%S+)')
  local frequency = ARGV[3]
  if frequency == 'visit' then
    if tonumber(visit) >= tonumber(ARGV[2]) then return 0 end
  elseif frequency == 'always' then
    if tonumber(at) + tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 0 end
  else
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[5] .. ' 0')
return 1
