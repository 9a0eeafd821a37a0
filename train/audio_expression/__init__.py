"""Generic audio-to-expression model: a window of speech feature frames (10 ms hop, bounded look-ahead) →
the mouth and jaw blendshapes (ARKit names, MediaPipe order subset). Speaker-independent: trained on several
speakers' clips labelled by our own tracker (`dnp prepare`), so its output drives any avatar.

Run `python3 -m train.audio_expression --help` from the repository root. Sub-commands: `features` (augmented
feature cache), `train` (fit, evaluate on held-out speakers, export), `evaluate` (an exported model on datasets).
"""
VERSION = "1.0.0"
