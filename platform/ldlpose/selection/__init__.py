"""Which model is the champion: the rules a user writes and the choice among registered versions.

Plain domain code, free of any tracking backend: ``rules`` (the grammar of ``search.champion.rule``,
its aliases) and ``champion`` (the version that holds a rule's alias). ``ldlpose.tracking`` applies
them to MLflow's model registry; the search checks a space's rule with them when it loads.
"""
