"""What every matplotlib rendering in Tocsin shares."""

from __future__ import annotations

import threading

# Matplotlib promises no thread safety even across separate figures, and graphs and charts
# render in worker threads: one lock keeps any two renderings from interleaving.
RENDER_LOCK = threading.Lock()
