"""`python3 -m train.audio_expression ...`"""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from .cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
