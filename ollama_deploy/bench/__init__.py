"""The load test and the tuning sweep (``python -m ollama_deploy.bench.tune``): measurements, not
deploy steps."""
