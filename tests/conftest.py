"""The project's own tests: offline (no model or dataset hub), one torch thread, slow tests opt-in.

Tiny models make many small tensor ops; on a 2-core machine two intra-op threads cost more than they give.
Tests marked ``slow`` (minutes on 2 CPU cores) run only with ``EDITBENCH_RUN_SLOW=1`` or ``-m slow`` (the hook is
in the root conftest.py, shared with benchmarks/).
"""
import os

import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
torch.set_num_threads(int(os.environ.get("EDITBENCH_TEST_THREADS", "1")))

