-- wrk script: the HTTP/JSON checkout (docs/HTTP.md) as a shop without a client library would run
-- it: each connection reserves a cart of 1-3 distinct SKUs, then confirms it (9 in 10) or releases
-- it (1 in 10), one request at a time (HTTP/1.1 keep-alive, no pipelining). Every reserve carries
-- an Idempotency-Key, so the engine's key path is measured too. Statuses other than 200/201 are
-- counted and printed at the end (a run with refusals is not a valid measurement).
local skus = { "TSHIRT-RED-XL", "MUG-WHT", "SNEAKER-42", "SOCKS-3P", "CAP-BLK", "PHONE-X" }
local counter = 0
local thread_id = 0
local pending = nil
local refused = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(42 + thread_id)
  wrk.headers["Content-Type"] = "application/json"
  if os.getenv("OMSD_KEY") then wrk.headers["Authorization"] = "Bearer " .. os.getenv("OMSD_KEY") end
end

local n = 0
function request()
  if pending then
    local id = pending
    pending = nil
    local action = (math.random(10) == 1) and "release" or "confirm"
    return wrk.format("POST", "/v1/reservations/" .. id .. "/" .. action, nil, "{}")
  end
  n = n + 1
  local lines, used = {}, {}
  for _ = 1, math.random(3) do
    local sku = skus[math.random(#skus)]
    if not used[sku] then
      used[sku] = true
      lines[#lines + 1] = string.format('{"sku":"%s","qty":%d}', sku, math.random(2))
    end
  end
  local body = '{"lines":[' .. table.concat(lines, ",") .. '],"ttl_ms":900000,"customer":' .. n .. ',"channel":"own"}'
  local headers = { ["Idempotency-Key"] = string.format("bench-%d-%d", thread_id, n) }
  return wrk.format("POST", "/v1/reservations", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    pending = body:match('"id":"(%d+)"')
  elseif status ~= 200 then
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx answers (wrk counts them too): %d\n", summary.errors.status))
end
