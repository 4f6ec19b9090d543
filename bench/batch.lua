-- wrk script: POST /v2/billing/meter_event_stream with BENCH_BATCH_SIZE events per request.
--
-- Environment: BENCH_TOKEN (a meter event session token), BENCH_CUSTOMERS (a file of customer
-- ids, one a line), BENCH_METERS (comma-separated event names), BENCH_RUN (a prefix that makes
-- identifiers unique across runs), BENCH_BATCH_SIZE (default 100).
package.path = (os.getenv("BENCH_DIR") or "bench") .. "/?.lua;" .. package.path
local common = require("common")

-- One event in JSON up to its identifier, which request() completes.
local EVENT = '{"event_name":"%s","payload":{"stripe_customer_id":"%s","value":"%d"},"identifier":"'

local batch_size, next_fragment, next_request_id

setup = common.setup

function init(args)
  batch_size = tonumber(common.env("BENCH_BATCH_SIZE", "100"))
  next_request_id = common.request_ids("b")
  next_fragment = common.cycle(common.event_fragments(EVENT))
  common.post("/v2/billing/meter_event_stream", common.env("BENCH_TOKEN"), "application/json")
end

function request()
  local parts = {}
  local prefix = next_request_id() .. "-"
  for k = 1, batch_size do
    parts[k] = next_fragment() .. prefix .. k .. '"}'
  end
  common.add("sent")
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
  if status ~= 200 then
    common.bad_status("batch", status, body)
    return
  end
  local n = tonumber(body:match('"accepted":%s*(%d+)')) or 0
  common.add("accepted", n)
  common.add("rejected", batch_size - n)
  if n ~= batch_size and common.counts.rejected <= batch_size then
    io.stderr:write("batch: rejected events: " .. body:sub(1, 400) .. "\n")
  end
end

function done(summary, latency, requests)
  common.done("batch", summary, latency)
end
