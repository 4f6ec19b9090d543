-- wrk script: POST /v2/billing/meter_event_stream with BENCH_BATCH_SIZE events per request.
--
-- Environment: BENCH_TOKEN (a meter event session token), BENCH_CUSTOMERS (a file of customer
-- ids, one a line), BENCH_METERS (comma-separated event names), BENCH_RUN (a prefix that makes
-- identifiers unique across runs), BENCH_BATCH_SIZE (default 100).
package.path = (os.getenv("BENCH_DIR") or "bench") .. "/?.lua;" .. package.path
local common = require("common")

local batch_size, run, fragments, counter, tid
local sent, accepted, rejected, bad_status = 0, 0, 0, 0
local next_fragment = 1

function setup(thread)
  common.setup(thread)
end

function init(args)
  tid = wrk.thread:get("tid")
  batch_size = tonumber(common.env("BENCH_BATCH_SIZE", "100"))
  run = common.env("BENCH_RUN", "b")
  local customers = common.read_lines(common.env("BENCH_CUSTOMERS"))
  local meters = {}
  for name in string.gmatch(common.env("BENCH_METERS"), "[^,]+") do meters[#meters + 1] = name end
  -- Pre-built events, all but the identifier: customer x meter, with varying values.
  fragments = {}
  for i, customer in ipairs(customers) do
    for j, meter in ipairs(meters) do
      fragments[#fragments + 1] = string.format(
        '{"event_name":"%s","payload":{"stripe_customer_id":"%s","value":"%d"},"identifier":"',
        meter, customer, (i * 7 + j) % 50 + 1)
    end
  end
  -- Threads start at different offsets so they don't all hit the same customers at once.
  next_fragment = ((tid - 1) * 997) % #fragments + 1
  counter = 0
  wrk.method = "POST"
  wrk.path = "/v2/billing/meter_event_stream"
  wrk.headers["Authorization"] = "Bearer " .. common.env("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local parts = {}
  local prefix = run .. "-" .. tid .. "-" .. counter .. "-"
  for k = 1, batch_size do
    parts[k] = fragments[next_fragment] .. prefix .. k .. '"}'
    next_fragment = next_fragment + 1
    if next_fragment > #fragments then next_fragment = 1 end
  end
  sent = sent + 1
  wrk.thread:set("sent", sent)
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    wrk.thread:set("bad_status", bad_status)
    if bad_status <= 3 then io.stderr:write("batch: HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n") end
    return
  end
  local n = tonumber(body:match('"accepted":%s*(%d+)')) or 0
  accepted = accepted + n
  rejected = rejected + (batch_size - n)
  wrk.thread:set("accepted", accepted)
  wrk.thread:set("rejected", rejected)
  if n ~= batch_size and rejected <= batch_size then
    io.stderr:write("batch: rejected events: " .. body:sub(1, 400) .. "\n")
  end
end

function done(summary, latency, requests)
  common.done("batch", summary, latency)
end
