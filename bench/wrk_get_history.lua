-- GET /api/2.0/mlflow/metrics/get-history of one metric with 100,000 points (no max_results: the
-- whole history in one response, as the MLflow REST API answers it).
dofile(os.getenv("BENCH_LUA_DIR") .. "/wrk_common.lua")

wrk.method = "GET"
wrk.path = "/api/2.0/mlflow/metrics/get-history?run_id=" .. os.getenv("BENCH_RUN_ID") .. "&metric_key=loss"
