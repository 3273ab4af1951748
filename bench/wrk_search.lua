-- POST /api/2.0/mlflow/runs/search with the body in BENCH_SEARCH_BODY (a filter, an order_by and
-- max_results, over the 10,000 runs bench/seed_load.py created).
dofile(os.getenv("BENCH_LUA_DIR") .. "/wrk_common.lua")

wrk.method = "POST"
wrk.path = "/api/2.0/mlflow/runs/search"
wrk.body = os.getenv("BENCH_SEARCH_BODY")
wrk.headers["Content-Type"] = "application/json"
