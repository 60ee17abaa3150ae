package redislimit

import "github.com/redis/go-redis/v9"

// script keeps one partition's budget in a Redis hash and changes it
// atomically. Time is the Redis server's clock (TIME), so that processes
// with skewed clocks agree; callers pass durations, never instants.
//
// Each bucket is kept as GCRA state: <p>rate (units per second, 0 for no
// limit), <p>burst, and <p>empty, the instant at which the bucket was, or
// will be, empty if nothing refills it. At instant x it holds
// min(burst, (x-empty)·rate) units; a negative amount is owed to
// reservations already granted. p is "r" for requests, "t" for tokens.
//
// gate is the instant a cool-down ends; spread counts the reservations
// already queued behind it, which are released a quarter request interval
// apart so that a fleet does not return in one instant.
//
// ARGV[1] is the operation, ARGV[2] the ttl (milliseconds), refreshed on
// every change and stretched to cover a gate, ARGV[3] the channel on which
// to announce a change of limits or a new cool-down ("" for none) and
// ARGV[4] the caller's origin, announced with the key as "key origin".
// Then:
//
//	reserve  requests tokens       -> wait in microseconds
//	cancel   requests tokens       -> 0
//	cooldown seconds               -> 0
//	limits   for r then t: rate burst remaining (rate 0: keep, -1: no
//	         limit; burst 0: keep; remaining -1: unknown; a bucket above
//	         remaining+1 is lowered to it) -> 0
var script = redis.NewScript(`
local key = KEYS[1]
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
local channel = ARGV[3]
local changed = false
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local h = {}
local raw = redis.call('HGETALL', key)
for i = 1, #raw, 2 do h[raw[i]] = tonumber(raw[i + 1]) end
local function num(f) return h[f] or 0 end
local dirty = {}
local function put(f, v) h[f] = v; dirty[#dirty + 1] = f end

local function level(p, x)
  local rate = num(p .. 'rate')
  if rate <= 0 then return math.huge end
  local burst = math.max(num(p .. 'burst'), 1)
  return math.min(burst, (x - num(p .. 'empty')) * rate)
end

-- take n units at x, the instant the gate opens; returns the instant
-- they are available.
local function take(p, n, x)
  local rate = num(p .. 'rate')
  if rate <= 0 or n <= 0 then return x end
  local burst = math.max(num(p .. 'burst'), 1)
  n = math.min(n, burst)
  local e = math.max(num(p .. 'empty'), x - burst / rate) + n / rate
  put(p .. 'empty', e)
  return math.max(e, x)
end

local function give(p, n)
  local rate = num(p .. 'rate')
  if rate <= 0 or n <= 0 then return end
  local burst = math.max(num(p .. 'burst'), 1)
  put(p .. 'empty', num(p .. 'empty') - math.min(n, burst) / rate)
end

local function drain(p, x)
  if num(p .. 'rate') > 0 and num(p .. 'empty') < x then put(p .. 'empty', x) end
end

local function limits(p, x, rate, burst, remaining)
  local old = num(p .. 'rate')
  local oldBurst = math.max(num(p .. 'burst'), 1)
  if rate ~= 0 or burst > 0 then
    local newRate = old
    if rate > 0 then newRate = rate elseif rate < 0 then newRate = 0 end
    local newBurst = num(p .. 'burst')
    if burst > 0 then newBurst = burst end
    newBurst = math.max(newBurst, 1)
    if newRate > 0 then
      local k = newBurst -- an unlimited bucket becomes a full one
      if old > 0 then k = math.min(level(p, x), newBurst) end
      put(p .. 'empty', x - k / newRate)
    end
    if newRate ~= old or (newRate > 0 and newBurst ~= oldBurst) then changed = true end
    put(p .. 'rate', newRate)
    put(p .. 'burst', newBurst)
  end
  local r = num(p .. 'rate')
  -- Servers round down: one that shows R may hold R+1.
  if remaining >= 0 and r > 0 and level(p, x) > remaining + 1 then
    put(p .. 'empty', x - (remaining + 1) / r)
  end
end

local result = 0
local gate = num('gate')
if op == 'reserve' then
  local x = math.max(now, gate)
  local ready = math.max(take('r', tonumber(ARGV[5]), x), take('t', tonumber(ARGV[6]), x))
  if gate > now then
    local spacing = 0.001
    if num('rrate') > 0 then spacing = 0.25 / num('rrate') end
    ready = math.max(ready, gate + num('spread') * spacing)
    put('spread', num('spread') + 1)
  end
  result = math.ceil((ready - now) * 1e6)
elseif op == 'cancel' then
  give('r', tonumber(ARGV[5]))
  give('t', tonumber(ARGV[6]))
elseif op == 'cooldown' then
  local untl = now + tonumber(ARGV[5])
  if untl > gate then
    if gate <= now then put('spread', 0) end
    drain('r', now)
    drain('t', now)
    put('gate', untl)
    gate = untl
    changed = true
  end
elseif op == 'limits' then
  local x = math.max(now, gate)
  limits('r', x, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
  limits('t', x, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
else
  return redis.error_reply('redislimit: unknown operation ' .. op)
end
if #dirty > 0 then
  local args = {}
  for _, f in ipairs(dirty) do
    args[#args + 1] = f
    args[#args + 1] = string.format('%.17g', h[f])
  end
  redis.call('HSET', key, unpack(args))
end
if gate > now then ttl = ttl + math.ceil((gate - now) * 1000) end
redis.call('PEXPIRE', key, ttl)
if changed and channel ~= '' then
  redis.call('PUBLISH', channel, key .. ' ' .. ARGV[4])
end
return result
`)
