-- wrk script: POST /v1/billing/meter_events, one form-encoded event per request.
--
-- Environment: BENCH_API_KEY (sk_...), BENCH_CUSTOMERS, BENCH_METERS, BENCH_RUN (see batch.lua).
package.path = (os.getenv("BENCH_DIR") or "bench") .. "/?.lua;" .. package.path
local common = require("common")

local run, fragments, counter, tid
local sent, accepted, rejected, bad_status = 0, 0, 0, 0
local next_fragment = 1

function setup(thread)
  common.setup(thread)
end

function init(args)
  tid = wrk.thread:get("tid")
  run = common.env("BENCH_RUN", "s")
  local customers = common.read_lines(common.env("BENCH_CUSTOMERS"))
  local meters = {}
  for name in string.gmatch(common.env("BENCH_METERS"), "[^,]+") do meters[#meters + 1] = name end
  fragments = {}
  for i, customer in ipairs(customers) do
    for j, meter in ipairs(meters) do
      fragments[#fragments + 1] = string.format(
        "event_name=%s&payload%%5Bstripe_customer_id%%5D=%s&payload%%5Bvalue%%5D=%d&identifier=",
        meter, customer, (i * 7 + j) % 50 + 1)
    end
  end
  next_fragment = ((tid - 1) * 997) % #fragments + 1
  counter = 0
  wrk.method = "POST"
  wrk.path = "/v1/billing/meter_events"
  wrk.headers["Authorization"] = "Bearer " .. common.env("BENCH_API_KEY")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  counter = counter + 1
  local body = fragments[next_fragment] .. run .. "-" .. tid .. "-" .. counter
  next_fragment = next_fragment + 1
  if next_fragment > #fragments then next_fragment = 1 end
  sent = sent + 1
  wrk.thread:set("sent", sent)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
    wrk.thread:set("accepted", accepted)
  else
    bad_status = bad_status + 1
    rejected = rejected + 1
    wrk.thread:set("bad_status", bad_status)
    wrk.thread:set("rejected", rejected)
    if bad_status <= 3 then io.stderr:write("single: HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  common.done("single", summary, latency)
end
