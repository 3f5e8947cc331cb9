"""loglabel's own detector: Page's two-sided CUSUM against a frozen reference.

:class:`Cusum` mimics River's detector interface, so :class:`drift.detectors.Detector`
wraps it like any River detector (under the name ``"CUSUM"``).
"""

from __future__ import annotations


class Cusum:
    """Page's two-sided CUSUM against a known in-control mean of 0.

    Unlike River's ``PageHinkley``, which measures deviations from its own
    running mean (so a level present from its first update is never a
    change), this CUSUM tests every input against the frozen reference the
    caller standardized it with: with ``delta`` the allowance ``k`` and
    ``threshold`` the bound ``h``, ``up = max(0, up + x - k)`` and
    ``down = max(0, down - x - k)``; it fires when either reaches ``h``
    (not before ``min_instances`` updates). ``run`` is the number of updates
    since the crossing side last stood at 0: the estimated updates since the
    change. The interface mimics River's (``update``, ``drift_detected``)
    so :class:`Detector` wraps it like any River detector.

    >>> c = Cusum(delta=0.5, threshold=4.0)
    >>> [i for i, x in enumerate([0.0] * 10 + [1.5] * 10) if c.update(x)]
    [13, 17]
    """

    __slots__ = ("delta", "threshold", "min_instances", "up", "down", "n", "up_n", "down_n",
                 "drift_detected")

    def __init__(self, delta: float = 1.0, threshold: float = 8.0, min_instances: int = 1) -> None:
        if not delta >= 0 or not threshold > 0:
            raise ValueError("CUSUM needs delta >= 0 and threshold > 0")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.min_instances = int(min_instances)
        self.up = self.down = 0.0
        self.n = self.up_n = self.down_n = 0
        self.drift_detected = False

    def update(self, x: float) -> bool:
        """Feed one standardized value; True if this update crossed the threshold.

        Like River's detectors, it restarts on the update after a firing.
        """
        if self.drift_detected:
            self.up = self.down = 0.0
            self.n = self.up_n = self.down_n = 0
        self.n += 1
        up = self.up + x - self.delta
        if up > 0.0:
            self.up_n += 1
        else:
            up, self.up_n = 0.0, 0
        down = self.down - x - self.delta
        if down > 0.0:
            self.down_n += 1
        else:
            down, self.down_n = 0.0, 0
        self.up, self.down = up, down
        h = self.threshold
        self.drift_detected = (up >= h or down >= h) and self.n >= self.min_instances
        return self.drift_detected
