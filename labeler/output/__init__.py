"""Durability: the dataset's Parquet shards (``shards``) and their column types, shared
by every writer (``dataset_schema``), the filesystem they go to (``storage``), and the
commit protocol that makes a row exactly-once (``checkpoint``)."""
