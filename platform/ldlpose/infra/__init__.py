"""Infrastructure: where data and results live (:mod:`.locations`, :mod:`.storage`), file helpers
(:mod:`.files`), one driver per search (:mod:`.lease`), phase timings (:mod:`.trace`) and connecting
to Ray (:mod:`.ray_cluster`).

The lowest layer above the core: it imports nothing of ldlpose but :mod:`ldlpose.errors`.
"""
