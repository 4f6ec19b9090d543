-- wrk script: POST /v1/billing/meter_events, one form-encoded event per request.
--
-- Environment: BENCH_API_KEY (sk_...), BENCH_CUSTOMERS, BENCH_METERS, BENCH_RUN (see batch.lua),
-- BENCH_SINGLE_PATH (default /v1/billing/meter_events; the calibration run posts the same
-- bodies to the bench-only trivial view, /bench/one_insert).
package.path = (os.getenv("BENCH_DIR") or "bench") .. "/?.lua;" .. package.path
local common = require("common")

-- One event, form-encoded, up to its identifier, which request() completes.
local EVENT = "event_name=%s&payload%%5Bstripe_customer_id%%5D=%s&payload%%5Bvalue%%5D=%d&identifier="

local next_fragment, next_request_id

setup = common.setup

function init(args)
  next_request_id = common.request_ids("s")
  next_fragment = common.cycle(common.event_fragments(EVENT))
  common.post(common.env("BENCH_SINGLE_PATH", "/v1/billing/meter_events"), common.env("BENCH_API_KEY"),
    "application/x-www-form-urlencoded")
end

function request()
  common.add("sent")
  return wrk.format(nil, nil, nil, next_fragment() .. next_request_id())
end

function response(status, headers, body)
  if status == 200 then
    common.add("accepted")
  else
    common.add("rejected")
    common.bad_status("single", status, body)
  end
end

function done(summary, latency, requests)
  common.done("single", summary, latency)
end
