-- Load a session in one round trip, optionally refreshing its expiry.
--
-- KEYS[1]  <prefix>:{<sid>}:rev
-- KEYS[2]  <prefix>:{<sid>}:meta
-- KEYS[3]  <prefix>:{<sid>}:blob
-- ARGV[1]  new time to live, milliseconds (> 0), or '' to leave the expiry alone
--
-- Returns {rev, meta, blob} (bulk strings), or nil when the session is unknown or expired.

local rev = redis.call('GET', KEYS[1])
if not rev then
    return nil
end
local meta = redis.call('GET', KEYS[2])
local blob = redis.call('GET', KEYS[3])
if not meta or not blob then
    -- All three keys are written and expire together; a partial session is no session.
    return nil
end
if ARGV[1] ~= '' then
    for i = 1, 3 do
        redis.call('PEXPIRE', KEYS[i], ARGV[1])
    end
end
return {rev, meta, blob}
