"""`python3 -m train {train,export} ...` (run from the repository root)."""
import os
import sys

# Before numpy/torch load: one BLAS thread, torch owns the parallelism (see docs/training.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("DNP_TORCH_THREADS", "2"))

from .cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
