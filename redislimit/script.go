package redislimit

import (
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// script keeps one partition's budget in Redis and changes it atomically.
// Time is the Redis server's clock (TIME), so that processes with skewed
// clocks agree; callers pass durations, never instants.
//
// Keys, all of one partition and all with the same hash tag, so that the
// script touches a single Redis Cluster slot:
//
//	KEYS[1]  hash: the buckets, the gate and the limits each source set
//	KEYS[2]  sorted set: the processes (origins) using the partition,
//	         scored by the instant until which each is known to be live
//	KEYS[3]  hash: the fleet's sends and refusals per tenth of a second
//	         (see counts.go)
//	KEYS[4]  hash: each process's share of the learned limits, by origin
//
// Each bucket runs as GCRA state: <p>rate (units per second, 0 for no
// limit), <p>burst and <p>empty, the instant at which the bucket was, or
// will be, empty if nothing refills it. At instant x it holds
// min(burst, (x-empty)·rate) units; a negative amount is owed to
// reservations already granted. p is "r" for requests, "t" for tokens.
//
// The rate and burst a bucket runs at are chosen on every call from three
// sources, each kept in its own fields:
//
//   - h<p>rate, h<p>burst, hat: the server's rate-limit headers, the
//     shared truth for htrust seconds after the last answer that had them.
//     Each process infers the rate from them with its own precision (a
//     new process has seen few answers): the lowest inferred in the last
//     window seconds holds (h<p>at);
//   - s<p>rate, s<p>burst, s<p>at: the caller's stated limits
//     (pacehttp.WithRate), which every call carries, so that state lost in
//     Redis (a flush, a restart) is restored by the next call instead of
//     forgotten. If processes state different limits, the lowest stated in
//     the last window seconds holds;
//   - KEYS[4]: the pacers' estimates, used only when neither headers nor
//     a stated limit is known, so that an estimate never overwrites a
//     stated limit. Each pacer learns its own share of the limit (what its
//     requests got through; see pacehttp.FleetBudget) and every call
//     carries it, so that lost state is restored as a stated limit is. The
//     fleet's rate is the sum of the shares of the live processes, its
//     burst the largest of theirs; a share of no limit counts only when
//     no process has a finite one.
//
// rsent is the instant the latest refusal that a pacer reported (refused)
// was sent: every reply carries it, and each pacer learns from it as from
// a refusal of its own.
//
// Until a limit is first known (warm), the fleet sends one
// request (probe) and holds the others for at most half a second, waiting
// for the limits its answer may state: processes that each sent their own
// first request would together exceed the server's burst.
//
// A change of rate or burst of a tenth or more (or a cool-down) voids the
// reservations outstanding, as pacehttp.Budget asks: gen changes, the
// cancels of older reservations are ignored (their units are gone with the
// old debt), and the change is announced on the channel so that other
// processes wake their waiters. gate is the instant a cool-down ends;
// spread counts the reservations queued behind it, released a quarter
// request interval apart so that a fleet does not return in one instant.
//
// An announcement reads "KEYS[1] origin gen", and a refusal's
// "KEYS[1] origin gen ago" (seconds since rsent, always with a fraction):
// the key may hold spaces, so readers take the fields from the right (see
// readAnnouncement).
//
// A hash without gen is new, or was lost. Its buckets then start as the
// caller's own latest reservation in Redis left them (ahead), and at most
// half full: a busy fleet whose state was flushed still holds reservations
// up to about that instant, and a fleet that starts cold wakes together.
// For window seconds after (born), each caller's latest reservation moves
// the buckets' end at least that far: the fleet's reservations made before
// the loss are all still to be sent. A caller back from failing open (resume) empties the
// buckets at least down to that, and to now: the fleet sent meanwhile
// without counting in Redis.
//
// ARGV, common to every operation:
//
//	1 op  2 ttl (ms)  3 channel ("" for none)  4 origin  5 window (s)
//	6 htrust (s)  7 ahead (s, may be negative)  8 resume (0, 1)
//	9..12 stated: requests rate, burst, tokens rate, burst (0: none)
//	13 slot (s, the width of a counting slot)  14 slots (ring size)
//	15 made (s since the caller's latest reservation was granted)
//	16..19 the caller's learned share: requests rate, burst, tokens
//	       rate, burst (rate 0: none, -1: no limit)
//
// then per operation, from ARGV[20] (arg(1)):
//
//	reserve  requests tokens after      -> wait (µs), not before after
//	         [requests at]...              seconds from now; then slots
//	                                       the caller kept and did not
//	                                       use (at: s from now)
//	cancel   requests tokens gen at     -> 1 if the units came back (or
//	                                       were void), 0 if later
//	                                       reservations hold them (at: s
//	                                       from now to the reservation's
//	                                       instant)
//	cooldown seconds                    -> 0
//	limits   source ("h" headers), then for requests and
//	         tokens: rate burst remaining (rate 0: keep, -1: no limit;
//	         burst 0: keep; remaining -1: unknown; a bucket above
//	         remaining+1 is lowered to it)                       -> 0
//	refused  sent (s before now)        -> 1 if it is the latest refusal
//	                                       (rsent), else 0
//	counts   from to (s from now)       -> see counts.go
//	sync     (nothing)                  -> 0
//
// Every operation but counts replies {result, gen, live, requests rate,
// requests burst, tokens rate, tokens burst, sources, rsent, now}: the
// limits in force (rates as strings, 0 for none), the number of live
// processes, one letter per bucket for the source in force (h, s, l, or n
// for none), and the latest refusal's instant (0 for none) and the
// script's (strings, in seconds).
var script = redis.NewScript(`
local hkey, lkey, ckey, skey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
local channel = ARGV[3]
local origin = ARGV[4]
local window = tonumber(ARGV[5])
local htrust = tonumber(ARGV[6])
local ahead = tonumber(ARGV[7])
local made = tonumber(ARGV[15]) -- seconds since the caller's latest reservation was granted
local resume = ARGV[8] == '1'
local stated = {r = {tonumber(ARGV[9]), tonumber(ARGV[10])}, t = {tonumber(ARGV[11]), tonumber(ARGV[12])}}
local slot = tonumber(ARGV[13])
local slots = tonumber(ARGV[14])
local share = {r = {tonumber(ARGV[16]), tonumber(ARGV[17])}, t = {tonumber(ARGV[18]), tonumber(ARGV[19])}}
local argBase = 19
local function arg(i) return ARGV[argBase + i] end
local warmup = 0.5 -- seconds, the pacer's warm-up wait

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6

-- counts: the ring of slots, field slot % slots = "slot sent refused".
local function count(at, sent, refused)
  local s = math.floor(at / slot)
  local f = tostring(s % slots)
  local v = redis.call('HGET', ckey, f)
  local vs, vn, vr = s, 0, 0
  if v then
    local a, b, c = string.match(v, '^(%S+) (%S+) (%S+)$')
    if tonumber(a) == s then vn, vr = tonumber(b), tonumber(c) end
  end
  redis.call('HSET', ckey, f, string.format('%d %d %d', vs, vn + sent, vr + refused))
  redis.call('PEXPIRE', ckey, math.max(ttl, math.ceil(slot * slots * 1000)))
end

if op == 'counts' then
  -- {now (µs), slot width (µs), then per slot from the oldest: sent, refused}
  local from = math.floor((now + tonumber(arg(1))) / slot)
  local last = math.floor((now + tonumber(arg(2))) / slot)
  from = math.max(from, last - slots + 1)
  local out = {math.floor(now * 1e6), math.floor(slot * 1e6), from}
  for s = from, last do
    local v = redis.call('HGET', ckey, tostring(s % slots))
    local n, r = 0, 0
    if v then
      local a, b, c = string.match(v, '^(%S+) (%S+) (%S+)$')
      if tonumber(a) == s then n, r = tonumber(b), tonumber(c) end
    end
    out[#out + 1] = n
    out[#out + 1] = r
  end
  return out
end

local h = {}
local raw = redis.call('HGETALL', hkey)
for i = 1, #raw, 2 do h[raw[i]] = tonumber(raw[i + 1]) end
local fresh = h['gen'] == nil
local function num(f) return h[f] or 0 end
local dirty = {}
local function put(f, v)
  if h[f] ~= v then
    h[f] = v
    dirty[f] = true
  end
end
local voided, changed = false, false

local function level(p, x)
  local rate = num(p .. 'rate')
  if rate <= 0 then return math.huge end
  return math.min(math.max(num(p .. 'burst'), 1), (x - num(p .. 'empty')) * rate)
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

-- give returns the n units of a reservation for at, less those that
-- reservations made after it hold: a bucket keeps no list of slots, and
-- handing back a slot in the middle of the schedule would give its end
-- twice (as rate.Reservation.Cancel reasons).
local function give(p, n, at)
  local rate = num(p .. 'rate')
  if rate <= 0 or n <= 0 then return true end
  local burst = math.max(num(p .. 'burst'), 1)
  local e = num(p .. 'empty')
  local back = math.min(n, burst) - math.max(e - at, 0) * rate
  if back > 0 then put(p .. 'empty', e - back / rate) end
  return back > 0
end

-- The caller's stated limits: the lowest stated within the window holds.
local function state(p)
  local rate, burst = stated[p][1], stated[p][2]
  if rate <= 0 then return end
  local cr, cb = num('s' .. p .. 'rate'), num('s' .. p .. 'burst')
  local lower = cr <= 0 or rate < cr or (rate == cr and burst <= cb)
  if lower or now - num('s' .. p .. 'at') > window then
    put('s' .. p .. 'rate', rate)
    put('s' .. p .. 'burst', burst)
    put('s' .. p .. 'at', now)
  end
end

-- The caller's share of the learned limits, kept by origin.
if share.r[1] ~= 0 or share.t[1] ~= 0 then
  local mine = string.format('%.17g %d %.17g %d', share.r[1], share.r[2], share.t[1], share.t[2])
  if redis.call('HGET', skey, origin) ~= mine then redis.call('HSET', skey, origin, mine) end
end

-- The learned limits: the sum of the live processes' shares. Shares of
-- processes no longer live are dropped.
local sum
local function learned()
  if sum then return sum end
  sum = {r = {rate = 0, burst = 0}, t = {rate = 0, burst = 0}}
  local raw = redis.call('HGETALL', skey)
  for i = 1, #raw, 2 do
    local o = raw[i]
    local until_ = tonumber(redis.call('ZSCORE', lkey, o) or 0) or 0
    if o == origin or until_ >= now - window then
      local v = {string.match(raw[i + 1], '^(%S+) (%S+) (%S+) (%S+)$')}
      for j, p in ipairs({'r', 't'}) do
        local rate, burst = tonumber(v[2 * j - 1]) or 0, tonumber(v[2 * j]) or 0
        if rate > 0 then
          sum[p].rate = sum[p].rate + rate
          sum[p].burst = math.max(sum[p].burst, burst)
        elseif rate < 0 then
          sum[p].unlimited = true
        end
      end
    else
      redis.call('HDEL', skey, o)
    end
  end
  return sum
end

-- The limits in force for bucket p, and their source.
local function pick(p)
  local hr = h['h' .. p .. 'rate']
  if hr ~= nil and now - num('hat') < htrust then
    if hr < 0 then return 0, 0, 'h' end
    return hr, num('h' .. p .. 'burst'), 'h'
  end
  local sr = num('s' .. p .. 'rate')
  if sr > 0 and (stated[p][1] > 0 or now - num('s' .. p .. 'at') <= window) then
    return sr, num('s' .. p .. 'burst'), 's'
  end
  local l = learned()[p]
  if l.rate > 0 then return l.rate, l.burst, 'l' end
  if l.unlimited then return 0, 0, 'l' end
  return 0, 0, 'n'
end

local function near(a, b) return math.abs(a - b) < 0.1 * math.max(a, b) end

-- apply runs bucket p at rate and burst from x on. A small change carries
-- what the bucket holds or owes; a material one keeps what it holds, forgets
-- what it owes, and voids the reservations outstanding.
local function apply(p, rate, burst, x)
  local old, oldBurst = num(p .. 'rate'), num(p .. 'burst')
  if burst <= 0 then burst = math.max(oldBurst, 1) end
  if rate == old and burst == oldBurst then return end
  local material = (old > 0) ~= (rate > 0) or
    (rate > 0 and (not near(rate, old) or not near(burst, oldBurst)))
  if rate > 0 then
    local k = burst -- an unlimited bucket becomes a full one
    if old > 0 then
      k = math.min(level(p, x), burst)
      if material then k = math.max(k, 0) end
    end
    put(p .. 'empty', x - k / rate)
  end
  put(p .. 'rate', rate)
  put(p .. 'burst', burst)
  if material then
    voided = true
    changed = not fresh -- a bucket made anew is no news to the fleet
  end
end

state('r')
state('t')
-- A rate of -1 (no limit) ranks above every other.
local function rank(r)
  if r < 0 then return math.huge end
  return r
end

if op == 'limits' then
  if arg(1) ~= 'h' then return redis.error_reply('redislimit: unknown source ' .. arg(1)) end
  for i, p in ipairs({'r', 't'}) do
    local rate, burst = tonumber(arg(3 * i - 1)), tonumber(arg(3 * i))
    -- Processes infer the rate from the headers each with its own
    -- precision: the lowest inferred within the window holds.
    local cur = h['h' .. p .. 'rate']
    if rate ~= 0 and (cur == nil or rank(rate) <= rank(cur) or now - num('h' .. p .. 'at') > window) then
      put('h' .. p .. 'rate', rate)
      put('h' .. p .. 'at', now)
    end
    if burst > 0 and (num('h' .. p .. 'burst') <= 0 or burst <= num('h' .. p .. 'burst') or now - num('h' .. p .. 'at') > window) then
      put('h' .. p .. 'burst', burst)
    end
  end
  put('hat', now)
end

local gate = num('gate')
local x = math.max(now, gate)
local sources = ''
for _, p in ipairs({'r', 't'}) do
  local rate, burst, src = pick(p)
  apply(p, rate, burst, x)
  sources = sources .. src
end
if fresh then put('born', now) end
-- The caller's latest reservation was granted before the state was
-- lost (by a margin for the callers' clocks), and has not been voided
-- since: the fleet still holds it.
local young = now - num('born') < window and now - made < num('born') - 0.05
if fresh or resume or young then
  for _, p in ipairs({'r', 't'}) do
    local rate = num(p .. 'rate')
    if rate > 0 then
      -- At most half the burst, as at a gate's opening (see cooldown):
      -- a fleet starting cold starts together.
      local e = math.max(now + ahead, now - 0.5 * math.max(num(p .. 'burst'), 1) / rate)
      if resume then e = math.max(e, now) end
      if not fresh then e = math.max(num(p .. 'empty'), e) end
      put(p .. 'empty', e)
    end
  end
end

local gen = num('gen')
local oldGen = gen
if fresh then
  gen = math.floor(now * 1e6)
elseif voided then
  gen = gen + 1
end
put('gen', gen)

if num('rrate') > 0 or num('trate') > 0 then put('warm', 1) end

local result = 0
local ready = now
if op == 'reserve' then
  if num('warm') == 0 then
    -- A fleet starting cold, before any answer stated the limits: one
    -- request goes, the others wait for its answer (a change of limits
    -- wakes them) or for warmup seconds, as the pacer's own warm-up does
    -- within a process; then, with no limit known still, all go.
    local probe = num('probe')
    ready = x
    if probe == 0 then
      put('probe', x)
      redis.call('HSET', hkey, 'pioneer', origin)
    elseif redis.call('HGET', hkey, 'pioneer') == origin then
      -- The process that sent first goes on, as a process alone does:
      -- without headers it learns the limit alone, which is quicker
      -- than every process learning a small share of it at once.
    elseif x - probe < warmup then
      ready = probe + warmup
    else
      put('warm', 1)
    end
  else
    -- Not before arg(3) seconds from now: a caller that must also keep
    -- to a bound of its own takes its slot where it will use it.
    local at = math.max(x, now + (tonumber(arg(3)) or 0))
    ready = math.max(take('r', tonumber(arg(1)), at), take('t', tonumber(arg(2)), at))
  end
  if gate > now then
    local spacing = 0.001
    if num('rrate') > 0 then spacing = 0.25 / num('rrate') end
    ready = math.max(ready, gate + num('spread') * spacing)
    put('spread', num('spread') + 1)
  end
  result = math.ceil((ready - now) * 1e6)
  count(ready, tonumber(arg(1)), 0)
  -- Slots the caller kept and did not use: not sent after all.
  for i = 4, #ARGV - argBase - 1, 2 do
    count(now + tonumber(arg(i + 1)), -tonumber(arg(i)), 0)
  end
elseif op == 'cancel' then
  -- Units voided since are gone with the debt they were part of; the
  -- request is not sent either way.
  -- The result says whether the units came back: 1 if so (or void), 0 if
  -- later reservations hold them, and the caller keeps the slot.
  result = 1
  if not fresh and not voided and tonumber(arg(3)) == oldGen then
    local at = now + tonumber(arg(4))
    local r = give('r', tonumber(arg(1)), at)
    local t = give('t', tonumber(arg(2)), at)
    if not (r and t) then result = 0 end
  end
  if result == 1 then count(now + tonumber(arg(4)), -tonumber(arg(1)), 0) end
elseif op == 'cooldown' then
  local untl = now + tonumber(arg(1))
  if untl > gate then
    if gate <= now then put('spread', 0) end
    -- The reservations outstanding are void: forget what they owe, and
    -- start from an empty bucket, as the server just said it is. At the
    -- opening the bucket holds what refilled meanwhile, but at most half
    -- its burst: the fleet's waiters wake together then, and the lateness
    -- of such a crowd, on top of a whole burst, meets a 429.
    for _, p in ipairs({'r', 't'}) do
      local rate = num(p .. 'rate')
      if rate > 0 then
        put(p .. 'empty', math.max(now, untl - 0.5 * math.max(num(p .. 'burst'), 1) / rate))
      end
    end
    put('gate', untl)
    gate = untl
    changed = true
    if not fresh then put('gen', gen + 1) end
  end
elseif op == 'limits' then
  for i, p in ipairs({'r', 't'}) do
    local remaining = tonumber(arg(1 + 3 * i))
    local r = num(p .. 'rate')
    -- Servers round down: one that shows R may hold R+1.
    if remaining >= 0 and r > 0 and level(p, x) > remaining + 1 then
      put(p .. 'empty', x - (remaining + 1) / r)
    end
  end
elseif op == 'refused' then
  local sent = now - tonumber(arg(1))
  count(sent, 0, 1)
  if sent > num('rsent') then
    put('rsent', sent)
    result = 1 -- the latest
  end
elseif op ~= 'sync' then
  return redis.error_reply('redislimit: unknown operation ' .. op)
end

local args = {}
for f in pairs(dirty) do
  args[#args + 1] = f
  args[#args + 1] = string.format('%.17g', h[f])
end
if #args > 0 then redis.call('HSET', hkey, unpack(args)) end
local keep = ttl
if gate > now then keep = ttl + math.ceil((gate - now) * 1000) end
redis.call('PEXPIRE', hkey, keep)

-- The caller is live until its last reservation, or the gate, and window
-- seconds after.
redis.call('ZADD', lkey, math.max(ready, gate), origin)
redis.call('ZREMRANGEBYSCORE', lkey, '-inf', now - window)
redis.call('PEXPIRE', lkey, keep)
if redis.call('EXISTS', skey) == 1 then redis.call('PEXPIRE', skey, keep) end
local live = redis.call('ZCARD', lkey)

if changed and channel ~= '' then
  redis.call('PUBLISH', channel, hkey .. ' ' .. origin .. ' ' .. string.format('%d', h['gen']))
end
if op == 'refused' and result == 1 and channel ~= '' then
  -- The latest refusal, and how long ago it was sent: news to every
  -- pacer of the fleet at once.
  redis.call('PUBLISH', channel, hkey .. ' ' .. origin .. ' ' .. string.format('%d', h['gen']) ..
    ' ' .. string.format('%.6f', now - num('rsent')))
end
local function f(v) return string.format('%.17g', v) end
return {result, h['gen'], live, f(num('rrate')), f(num('rburst')), f(num('trate')), f(num('tburst')), sources,
  f(num('rsent')), f(now)}
`)

// reply is what every operation but counts returns.
type reply struct {
	result  int64 // the operation's result: a reserve's wait in µs
	gen     int64 // the generation of the reservations granted
	live    int   // processes using the partition
	limits  [2]bucket
	sources string // the source in force per bucket, as letters
	// rsent is the instant the latest refusal reported was sent, 0 for
	// none, and now the script's instant, both on Redis's clock.
	rsent, now float64
}

// bucket is the rate and burst a bucket runs at; a zero rate means no
// limit.
type bucket struct {
	rate  float64
	burst int
}

func parseReply(v any) (reply, error) {
	s, ok := v.([]any)
	if !ok || len(s) != 10 {
		return reply{}, fmt.Errorf("redislimit: unexpected reply %T %v", v, v)
	}
	var r reply
	var err error
	num := func(i int) int64 {
		switch x := s[i].(type) {
		case int64:
			return x
		case string:
			n, e := strconv.ParseFloat(x, 64)
			if e != nil && err == nil {
				err = fmt.Errorf("redislimit: reply field %d: %w", i, e)
			}
			return int64(n)
		}
		if err == nil {
			err = fmt.Errorf("redislimit: reply field %d is a %T", i, s[i])
		}
		return 0
	}
	flt := func(i int) float64 {
		x, _ := s[i].(string)
		f, e := strconv.ParseFloat(x, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("redislimit: reply field %d: %w", i, e)
		}
		return f
	}
	r.result, r.gen, r.live = num(0), num(1), int(num(2))
	r.limits[0] = bucket{rate: flt(3), burst: int(flt(4))}
	r.limits[1] = bucket{rate: flt(5), burst: int(flt(6))}
	r.sources, _ = s[7].(string)
	r.rsent, r.now = flt(8), flt(9)
	return r, err
}
