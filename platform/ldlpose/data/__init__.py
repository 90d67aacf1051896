"""Head-pose data: prepared Parquet shards, benchmarks and the training input pipeline.

* :mod:`ldlpose.data.shards` — the on-disk format (one row per face, a folder of
  ``part-NNNNN.parquet`` files plus ``manifest.json``): :class:`~ldlpose.data.shards.ShardWriter`,
  :func:`~ldlpose.data.shards.read_manifest`, :func:`~ldlpose.data.shards.read_labels`.
* :mod:`ldlpose.data.sources` — readers that turn the public datasets (300W-LP, AFLW2000, BIWI,
  FSA-Net npz files, the synthetic heads of :mod:`ldlpose.data.synthhead`) into shards; they back
  ``ldlpose prepare``.
* :mod:`ldlpose.data.benchmarks` — named evaluation sets (``synth``, ``aflw2000``, ``biwi``,
  ``biwi-p2``), where their prepared data lives and which rows count.
* :mod:`ldlpose.data.pipeline` — the torch ``Dataset``, augmentation, subject-disjoint validation
  split and same-subject pair batches used for training and evaluation.

Importing this package is cheap; each submodule imports its heavy dependencies itself.
See ``docs/data.md`` for the user-facing description of the format and the commands.
"""
