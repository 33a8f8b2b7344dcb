"""``vidground batch``: many questions over an archive of videos as a Ray Data pipeline.

:mod:`.manifest` reads the questions (JSONL, CSV, Parquet or a folder plus one question) and
names each row (video identity + query + options); :mod:`.writer` appends results as they come
(JSONL, resumable) and writes the final JSONL and Parquet; :mod:`.pipeline` runs the rows on Ray
(imported only when a batch runs); :mod:`.cli` is the Typer command. Nothing here is imported by
``import vidground``.
"""
