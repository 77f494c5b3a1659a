"""Scanning past one machine: ``compsec scan-many`` on Ray, with ranged reads of remote checkpoints.

- :mod:`compsec.cluster.config` — :class:`ScanManyConfig`, the options of a run.
- :mod:`compsec.cluster.sources` — the models of a run, from a list file (text or JSONL) or a folder tree.
- :mod:`compsec.cluster.ranged` — a remote safetensors file (any fsspec URL) made local: whole, or only the header
  and the rows a sampled scan reads (a sparse file).
- :mod:`compsec.cluster.task` — :func:`scan_one`, the per-model function (the same in process or in a Ray task).
- :mod:`compsec.cluster.table` — ``results.parquet``, the append-only results table.
- :mod:`compsec.cluster.driver` — submits :func:`scan_one` to Ray with a deadline per model.
- :mod:`compsec.cluster.session` — the Ray connection of one command (also ``compsec audit --ray``'s).
- :mod:`compsec.cluster.report` — ``report.html`` rendered from the table.

Ray, pyarrow and fsspec come with ``pip install 'compsec[cluster]'`` and are imported lazily.
"""
