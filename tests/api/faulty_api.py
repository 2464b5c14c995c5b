"""``python -m tests.api.faulty_api``: the real API process, with one version broken.

The version named by ``FAULTY_VERSION`` fails a share ``FAULTY_RATE`` of its rankings (the
same ``CoreError`` path a broken model takes: the API answers 500 and logs the error), and
takes ``FAULTY_DELAY_MS`` longer on the others. Everything else is the production API.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from core.errors import CoreError
from core.serving import predict

FAULTY = os.environ.get("FAULTY_VERSION", "")
RATE = float(os.environ.get("FAULTY_RATE", "0"))
DELAY_S = float(os.environ.get("FAULTY_DELAY_MS", "0")) / 1000
_rank_one = predict.rank_one


def rank_one(loaded: Any, *args: Any, **kwargs: Any) -> Any:
    if loaded.version.version == FAULTY:
        if random.random() < RATE:
            raise CoreError("simulated fault of a broken model")
        if DELAY_S:
            time.sleep(DELAY_S)
    return _rank_one(loaded, *args, **kwargs)


predict.rank_one = rank_one

if __name__ == "__main__":
    from api.__main__ import main

    main()
