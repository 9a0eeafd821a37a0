"""Dynamic Neural Portraits: model, training and ONNX avatar export for dnp-live.

Run `python3 -m train --help` from the repository root. Sub-commands: `train`, `export`.
"""
__version__ = "0.1.0"
