"""Gunicorn settings for `shop serve`; values come from the command line where it gives them."""

worker_class = "uvicorn_worker.UvicornWorker"
preload_app = False  # every worker builds its own engines after the fork; nothing connects in the master
keepalive = 5
graceful_timeout = 20
timeout = 60
proc_name = "shop"
