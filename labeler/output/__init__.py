"""Durability: the dataset's Parquet shards (``shards``), the filesystem they go to
(``storage``), and the commit protocol that makes a row exactly-once
(``checkpoint``)."""
