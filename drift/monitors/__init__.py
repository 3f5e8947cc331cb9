"""Per-stream monitors: numeric features and scores (``numeric``, with the per-column
state in ``columns`` and the frozen reference and its calibration in ``calibration``),
categorical features (``categorical``), and labels (``labels``: positive rate and error
stream)."""
