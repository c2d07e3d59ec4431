-- Create a session: set all three keys unless the session exists.
--
-- KEYS[1]  <prefix>:{<sid>}:rev   the revision, the key that says whether the session exists
-- KEYS[2]  <prefix>:{<sid>}:meta
-- KEYS[3]  <prefix>:{<sid>}:blob
-- ARGV[1]  meta bytes
-- ARGV[2]  blob bytes
-- ARGV[3]  time to live, milliseconds (> 0)
--
-- Returns 1 when created (at revision 1), 0 when the session exists (nothing written).

if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
return 1
