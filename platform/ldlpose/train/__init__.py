"""Training one run: the per-worker loop (``loop``), where it runs (``session``: Ray Train workers or one
CPU worker in-process) and the driver (``run``)."""
