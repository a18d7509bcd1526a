-- Offers an order to a rider: takes the rider lock and the order lock with
-- one fencing token "{orderId}:{seq}" from the city's counter, or says who
-- holds them. Both locks expire with the offer.
--
-- KEYS[1]  offer:{city}:rider:<rider>   STRING lock = token
-- KEYS[2]  offer:{city}:order:<order>   STRING lock = token
-- KEYS[3]  fence:{city}                 counter
-- ARGV[1]  order id
-- ARGV[2]  ttl ms
--
-- Returns: { status, token }
-- Statuses: "ok" (token set), "order_offered" (the order has a live offer),
--           "rider_busy" (the rider has a live offer).

if redis.call("EXISTS", KEYS[2]) == 1 then
  return { "order_offered", "" }
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  return { "rider_busy", "" }
end
local token = ARGV[1] .. ":" .. redis.call("INCR", KEYS[3])
redis.call("SET", KEYS[1], token, "PX", ARGV[2])
redis.call("SET", KEYS[2], token, "PX", ARGV[2])
return { "ok", token }
