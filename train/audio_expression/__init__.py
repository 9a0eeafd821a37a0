"""Generic audio-to-expression model: a window of speech feature frames (10 ms hop, bounded look-ahead) →
the mouth and jaw blendshapes (ARKit names, MediaPipe order subset). Speaker-independent: trained on several
speakers' clips labelled by our own tracker (`dnp prepare`), so its output drives any avatar. The jaw and the
lip rounding and spreading come from a phonetic prior with no trained weights (phonetic.py), the rest from a
small trained network.

Run `python3 -m train.audio_expression --help` from the repository root. Sub-commands: `features` (augmented
feature cache), `train` (fit, evaluate on held-out speakers, export), `ensemble` (average trained networks,
export), `sync` (each clip's audio/video offset), `calibrate` (an avatar's own blendshape ranges).
"""
VERSION = "1.1.0"  # 1.1: the phonetic prior (phonetic.py) inside the exported graph
