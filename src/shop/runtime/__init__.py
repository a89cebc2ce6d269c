"""Process management: gunicorn, worker pools, autoscaling, nginx."""
