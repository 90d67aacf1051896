"""Tune's searcher: Ray's ``OptunaSearch``, handing Tune each trial's values under their public names.

Optuna keeps a method's hyperparameter under a method-qualified name where two methods' distributions
force one (:func:`ldlpose.search.optuna_space.names`); Tune's config, and through it the
``ldlpose.assignment`` tag, gets the run-config key instead (:func:`ldlpose.search.names.public_names`).
What Tune hands back to the searcher is keyed by trial id, never by parameter name, so the study
itself is untouched. A search started before this class pickled Ray's own ``OptunaSearch``; it
resumes with it and keeps Optuna's names in Tune's config, which every reader accepts.
"""

from __future__ import annotations

from ray.tune.search.optuna import OptunaSearch

from ldlpose.search.names import public_names

__all__ = ["PublicNamesOptunaSearch"]


class PublicNamesOptunaSearch(OptunaSearch):
    """``OptunaSearch`` whose suggestions name every method hyperparameter ``method.hparams.<name>``."""

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        return public_names(config) if isinstance(config, dict) else config  # None or Searcher.FINISHED
