"""Training one run on Ray Train: the per-worker loop (``loop``) and the driver (``run``)."""
