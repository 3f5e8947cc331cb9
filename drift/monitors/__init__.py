"""Per-stream monitors: numeric features and scores (``numeric``), categorical
features (``categorical``), and labels (``labels``: positive rate and error stream)."""
