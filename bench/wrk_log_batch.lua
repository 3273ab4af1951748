-- POST /api/2.0/mlflow/runs/log-batch with 1,000 metrics per request (10 keys x 100 steps) to
-- the run in BENCH_RUN_ID. Every request gets its own sequence number (from BENCH_SEQ_BASE on, so
-- a later pass does not repeat an earlier one), hence its own steps and timestamp: no request
-- repeats a metric another already logged.
dofile(os.getenv("BENCH_LUA_DIR") .. "/wrk_common.lua")

local run_id = os.getenv("BENCH_RUN_ID")
local threads = tonumber(os.getenv("BENCH_WRK_THREADS"))
local seq_base = tonumber(os.getenv("BENCH_SEQ_BASE") or "0")
local path = "/api/2.0/mlflow/runs/log-batch"
local headers = { ["Content-Type"] = "application/json" }
local counter = 0
local parts = {}

request = function()
   local seq = seq_base + counter * threads + id
   counter = counter + 1
   local timestamp = 1700000000000 + seq
   for j = 0, 999 do
      local step = seq * 100 + math.floor(j / 10)
      parts[j + 1] = '{"key":"m' .. (j % 10) .. '","value":' .. string.format("%.4f", (step % 997) / 997) ..
         ',"timestamp":' .. timestamp .. ',"step":' .. step .. '}'
   end
   local body = '{"run_id":"' .. run_id .. '","metrics":[' .. table.concat(parts, ",") .. ']}'
   return wrk.format("POST", path, headers, body)
end
